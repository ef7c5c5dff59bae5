"""The ``tickarchive`` command: the root app, the ``config`` group, and every command group
registered explicitly below (a module that is missing is an import error, never a
silently absent command). A ``TickarchiveError`` is printed as one line on stderr with
exit status 1.

``app`` (``from tickarchive.cli import app``) is the whole command with every group
registered. ``main`` registers only the group of the command it is asked to run when
``COMMAND_GROUPS`` names it (the others and their imports are not loaded: ``tickarchive
replay`` starts ~0.2 s sooner), everything otherwise (help, unknown commands, usage
errors).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Final

import typer

from tickarchive.errors import TickarchiveError

_app = typer.Typer(
    name="tickarchive",
    help="A loss-free, gap-aware archive of every Deribit option quote and trade.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@_app.callback()
def _root(
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (see docs/configuration.md)")
    ] = None,
) -> None:
    if config is not None:
        from tickarchive.settings import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(config)


config_app = typer.Typer(help="Inspect and validate settings.", no_args_is_help=True)
_app.add_typer(config_app, name="config")


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


GROUPS: Final = (
    "tickarchive.cli.stack", "tickarchive.cli.rollover", "tickarchive.cli.journal", "tickarchive.cli.collect",
    "tickarchive.cli.sim", "tickarchive.cli.loadtest", "tickarchive.cli.archive", "tickarchive.cli.export",
    "tickarchive.cli.api", "tickarchive.cli.keys", "tickarchive.ops.demo", "tickarchive.cli.report",
    "tickarchive.cli.drill", "tickarchive.cli.bench",
)
"""Every command group's module, in registration (help) order: each has ``register(app)``
but ``bench``, whose ``app`` is added as ``tickarchive bench``."""

COMMAND_GROUPS: Final = {
    "up": "tickarchive.cli.stack", "down": "tickarchive.cli.stack", "status": "tickarchive.cli.stack",
    "migrate": "tickarchive.cli.stack", "rollover": "tickarchive.cli.rollover",
    "warm-retention": "tickarchive.cli.rollover", "replay": "tickarchive.cli.journal",
    "journal": "tickarchive.cli.journal", "collect": "tickarchive.cli.collect", "backfill": "tickarchive.cli.collect",
    "sim": "tickarchive.cli.sim", "loadtest": "tickarchive.cli.loadtest", "archive": "tickarchive.cli.archive",
    "export": "tickarchive.cli.export", "api": "tickarchive.cli.api", "keys": "tickarchive.cli.keys",
    "demo": "tickarchive.ops.demo", "report": "tickarchive.cli.report", "drill": "tickarchive.cli.drill",
    "bench": "tickarchive.cli.bench",
}
"""The module of each top-level command (a test checks it against the registrations)."""

_registered: list[str] = []


def _register(modules: tuple[str, ...]) -> None:
    for name in modules:
        if name in _registered:
            continue
        module = importlib.import_module(name)
        if name == "tickarchive.cli.bench":
            _app.add_typer(module.app, name="bench")
        else:
            module.register(_app)
        _registered.append(name)


def _register_all() -> None:
    if len(_registered) < len(GROUPS):
        if _registered:  # keep the help order: start again
            _app.registered_commands = []
            _app.registered_groups = [g for g in _app.registered_groups if g.name == "config"]
            _registered.clear()
        _register(GROUPS)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        _register_all()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_of(argv: list[str]) -> str | None:
    """The top-level command ``argv`` names (after the root options), or None."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config":
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return a
    return None


def main(args: list[str] | None = None) -> None:
    """The ``tickarchive`` entry point: every error is a message, never a traceback.

    A usage error (unknown command or option, missing or malformed value) is one or two
    lines from ``tickarchive.cli.usage`` with exit status 2; a ``TickarchiveError`` is
    ``error: ...`` with exit status 1."""
    from tickarchive.cli.usage import PROG, explain

    # numpy's OpenBLAS starts a thread per core at import, which spin a while (~0.1 CPU-s);
    # no command does linear algebra worth a second thread. The operator's setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    argv = list(sys.argv[1:] if args is None else args)
    group = COMMAND_GROUPS.get(_command_of(argv) or "")
    if group is None:
        _register_all()
    else:
        _register((group,))
    try:
        _app(argv, prog_name=PROG, standalone_mode=False)
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
            _register_all()
            for line in explain(exc, argv, typer.main.get_command(_app)):
                typer.echo(line, err=True)
        sys.exit(getattr(exc, "exit_code", 2))
