"""``tickarchive.cli.main`` registers only the group of the command it runs
(``COMMAND_GROUPS``): the map names, for every top-level command of the whole app, the
module that registers it, and a command run that way loads none of the other groups."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer

import tickarchive.cli as cli


def _names(app: typer.Typer) -> set[str]:
    return {c.name or "" for c in app.registered_commands} | {g.name or "" for g in app.registered_groups}


def test_every_top_level_command_is_mapped_to_the_module_that_registers_it() -> None:
    full = _names(cli.app) - {"config"}
    assert set(cli.COMMAND_GROUPS) == full
    for module in cli.GROUPS:
        one = typer.Typer()
        mod = importlib.import_module(module)
        if module.endswith(".bench"):
            one.add_typer(mod.app, name="bench")
        else:
            mod.register(one)
        assert {n for n, m in cli.COMMAND_GROUPS.items() if m == module} == _names(one), module


def test_a_command_loads_only_its_group() -> None:
    code = (
        "import sys; from tickarchive.cli import main\n"
        "try:\n    main(['--config', 'x.toml', 'replay', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('tickarchive.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['tickarchive.cli.journal', 'tickarchive.cli.usage']"


def test_the_whole_app_keeps_its_order_after_a_lazy_registration() -> None:
    code = (
        "import tickarchive.cli as cli\n"
        "cli._register(('tickarchive.cli.journal',))\n"
        "print([c.name for c in cli.app.registered_commands][:3])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['up', 'down', 'status']"
