"""The ``tickarchive`` command: the root app, the ``config`` group, and every command group
registered explicitly below (a module that is missing is an import error, never a
silently absent command). A ``TickarchiveError`` is printed as one line on stderr with
exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tickarchive.errors import TickarchiveError

app = typer.Typer(
    name="tickarchive",
    help="A loss-free, gap-aware archive of every Deribit option quote and trade.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.callback()
def _root(
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (see docs/configuration.md)")
    ] = None,
) -> None:
    if config is not None:
        import os

        from tickarchive.settings import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(config)


config_app = typer.Typer(help="Inspect and validate settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check() -> None:
    """Validate the settings (environment + config file) and say so."""
    from tickarchive.settings import load_settings

    load_settings()
    typer.echo("settings ok")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings as JSON (passwords and DSNs hidden)."""
    import json

    from tickarchive.settings import load_settings

    data = load_settings().model_dump(mode="json")
    for section in data.values():
        for key in list(section):
            if ("password" in key or key.endswith("dsn")) and section[key]:
                section[key] = "***"
    typer.echo(json.dumps(data, indent=2))


@config_app.command("reference")
def config_reference() -> None:
    """Print the settings reference in Markdown (the source of docs/configuration.md)."""
    from tickarchive.settings_doc import reference_markdown

    typer.echo(reference_markdown(), nl=False)


def _register_all() -> None:
    from tickarchive.cli import (
        api,
        archive,
        bench,
        collect,
        drill,
        export,
        journal,
        keys,
        loadtest,
        report,
        rollover,
        sim,
        stack,
    )
    from tickarchive.ops import demo

    for module in (stack, rollover, journal, collect, sim, loadtest, archive, export, api, keys, demo, report, drill):
        module.register(app)
    app.add_typer(bench.app, name="bench")


_register_all()


def main(args: list[str] | None = None) -> None:
    """The ``tickarchive`` entry point: every error is a message, never a traceback.

    A usage error (unknown command or option, missing or malformed value) is one or two
    lines from ``tickarchive.cli.usage`` with exit status 2; a ``TickarchiveError`` is
    ``error: ...`` with exit status 1."""
    from tickarchive.cli.usage import PROG, explain

    argv = list(sys.argv[1:] if args is None else args)
    try:
        app(argv, prog_name=PROG, standalone_mode=False)
    except TickarchiveError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # typer/click usage errors (they carry their exit codes)
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            for line in explain(exc, argv, typer.main.get_command(app)):
                typer.echo(line, err=True)
        sys.exit(getattr(exc, "exit_code", 2))
