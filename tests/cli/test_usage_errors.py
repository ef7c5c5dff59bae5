"""Every command, given bad arguments, answers with one or two lines (what is wrong, and the
command line to type instead) and exit status 2 — never a traceback.

The commands are found by walking the real click tree of ``tickarchive.cli.app``, so a
command added later is covered without touching this file. Bad arguments never reach a
command's body (click rejects them while parsing), so nothing is started."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from tickarchive.cli import app, main

TICKARCHIVE = str(Path(sys.executable).parent / "tickarchive")


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    commands = getattr(command, "commands", None)
    if commands is None:
        yield path, command
        return
    for name, sub in sorted(commands.items()):
        yield from _leaves(sub, (*path, name))


def _groups(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    commands = getattr(command, "commands", None)
    if commands is not None:
        yield path
        for name, sub in sorted(commands.items()):
            yield from _groups(sub, (*path, name))


ROOT = typer.main.get_command(app)
LEAVES = list(_leaves(ROOT))
GROUPS = list(_groups(ROOT))


def _numeric(param: Any) -> str | None:
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    args = getattr(ann, "__args__", ()) or (ann,)
    if bool in args:
        return None
    if int in args:
        return "a whole number"
    if float in args:
        return "a number"
    return None


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.err.splitlines()


def _assert_explained(lines: list[str], command_path: str) -> None:
    assert "Traceback" not in "\n".join(lines)
    assert 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("error: "), lines
    assert lines[-1].startswith(("usage: ", "did you mean: ")), lines
    assert command_path in lines[-1], lines


def test_the_walk_finds_every_command() -> None:
    paths = {" ".join(p) for p, _ in LEAVES}
    assert {"up", "demo", "archive export", "report quality", "journal ls", "api", "sim", "bench sim"} <= paths
    assert len(LEAVES) > 30


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=" ".join)
def test_unknown_option(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run([*path, "--no-such-option"], capsys)
    assert code == 2
    _assert_explained(lines, "tickarchive " + " ".join(path))
    assert "--no-such-option" in lines[0]


@pytest.mark.parametrize("path", [p for p, c in LEAVES if any(q.required for q in c.params)], ids=" ".join)
def test_missing_required(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    command = dict(LEAVES)[path]
    code, lines = _run(list(path), capsys)
    assert code == 2
    _assert_explained(lines, "tickarchive " + " ".join(path))
    assert lines[0].startswith(("error: Missing option", "error: Missing argument")), lines
    for param in command.params:
        if param.required and param.param_type_name == "option":
            # the usage line spells every required option with what it takes
            assert f"{max(param.opts, key=len)} {param.metavar}" in lines[1], (param.name, lines)
            assert param.metavar, f"{' '.join(path)}: give --{param.name} a metavar (what to type)"


NUMERIC = [
    (path, max(p.opts, key=len), kind)
    for path, c in LEAVES
    for p in c.params
    if p.param_type_name == "option" and (kind := _numeric(p)) is not None
]


@pytest.mark.parametrize(("path", "option", "kind"), NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o, _ in NUMERIC])
def test_malformed_number(path: tuple[str, ...], option: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run([*path, option, "abc"], capsys)
    assert code == 2
    _assert_explained(lines, "tickarchive " + " ".join(path))
    assert lines[0] == f"error: Invalid value for {option}: 'abc' is not {kind}.", lines


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "tickarchive")
def test_unknown_command(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run([*path, "nosuchcmd"], capsys)
    assert code == 2
    _assert_explained(lines, " ".join(("tickarchive", *path)))
    assert lines[0] == "error: No such command 'nosuchcmd'."
    # the hint lists what there is
    group = ROOT
    for name in path:
        group = group.commands[name]
    assert all(name in lines[1] for name in group.commands)


def test_option_without_its_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(["report", "quality", "--day"], capsys)
    assert code == 2
    assert lines == [
        "error: Option '--day' requires an argument.",
        "usage: tickarchive report quality --day YYYY-MM-DD --out DIR [OPTIONS]   "
        "(every option: tickarchive report quality --help)",
    ]


def test_a_path_given_without_its_option_is_pointed_at_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(["journal", "ls", ".local/journal-demo"], capsys)
    assert code == 2
    assert lines == [
        "error: Got unexpected extra argument(s) (.local/journal-demo)",
        "did you mean: tickarchive journal ls --dir .local/journal-demo   "
        "(every option: tickarchive journal ls --help)",
    ]


@pytest.mark.parametrize(
    ("args", "first", "second"),
    [
        (["nosuchcmd"], "error: No such command 'nosuchcmd'.", "usage: tickarchive COMMAND ..."),
        (["archive", "export"], "error: Missing option '--month'.",
         "usage: tickarchive archive export --month YYYY-MM [OPTIONS]"),
        (["api", "--port", "abc"], "error: Invalid value for --port: 'abc' is not a whole number.",
         "usage: tickarchive api [OPTIONS]"),
        (["report", "quality"], "error: Missing option '--day'.",
         "usage: tickarchive report quality --day YYYY-MM-DD --out DIR [OPTIONS]"),
    ],
)
def test_the_installed_command(args: list[str], first: str, second: str) -> None:
    """The cases of issue 16, through the console script a user runs."""
    proc = subprocess.run([TICKARCHIVE, *args], capture_output=True, text=True, timeout=600)  # a hang guard only
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0] == first
    assert lines[1].startswith(second)
