"""Command-line usage errors as one or two plain lines: what is wrong, and what to type.

Typer/click raise a usage error (an exception carrying ``format_message()`` and, for most,
the ``ctx`` of the command being parsed) before any command runs. ``explain`` turns one
into::

    error: Missing option '--month'.
    usage: tickarchive archive export --month YYYY-MM [OPTIONS]   (every option: tickarchive archive export --help)

The usage line names every *required* option with its metavar, so the line says what to
type instead; typer's validation wording ("Input should be a valid integer, unable to parse
string as an integer") is rewritten into the value given and the kind expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "tickarchive"

_KIND_WORDS = (
    ("valid integer", "a whole number"),
    ("valid number", "a number"),
    ("valid boolean", "true or false"),
)


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def _is_path(param: Any) -> bool:
    ann = _annotation(param)
    return ann is Path or (ann is not None and Path in getattr(ann, "__args__", ()))


def _metavar(param: Any) -> str:
    explicit = getattr(param, "metavar", None)
    if explicit:
        return str(explicit)
    ann = _annotation(param)
    args = getattr(ann, "__args__", ()) or (ann,)
    if int in args:
        return "N"
    if float in args:
        return "NUMBER"
    if Path in args:
        return "PATH"
    return str(getattr(param, "name", "VALUE") or "VALUE").upper()


def usage_line(ctx: Any) -> str:
    """``tickarchive <command> <required options> [OPTIONS] <arguments>`` of ``ctx.command``."""
    command = ctx.command
    pieces = [ctx.command_path]
    optional = False
    arguments = []
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") == "argument":
            name = _metavar(param)
            many = getattr(param, "nargs", 1) == -1
            piece = f"{name}..." if many else name
            arguments.append(piece if getattr(param, "required", False) else f"[{piece}]")
        elif getattr(param, "required", False):
            opt = max(param.opts, key=len)
            pieces.append(opt if getattr(param, "is_flag", False) else f"{opt} {_metavar(param)}")
        elif "--help" not in param.opts:
            optional = True
    if optional:
        pieces.append("[OPTIONS]")
    commands = getattr(command, "commands", None)
    if commands is not None:
        pieces.append("COMMAND")
    pieces += arguments
    return " ".join(pieces)


def _given(args: Sequence[str], opts: Sequence[str]) -> str | None:
    """The value typed after one of ``opts`` (``--port abc`` or ``--port=abc``)."""
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1:]
    return None


def _message(exc: Any, args: Sequence[str]) -> str:
    text = str(exc.format_message()).strip()
    param = getattr(exc, "param", None)
    if param is not None and "Input should be" in text:
        opts = list(getattr(param, "opts", ()))
        given = _given(args, opts)
        expected = next((words for key, words in _KIND_WORDS if key in text), None)
        if expected is not None:
            name = max(opts, key=len) if opts else str(param.name)
            shown = f"{given!r}" if given is not None else "the value given"
            text = f"Invalid value for {name}: {shown} is not {expected}."
    return " ".join(text.split())


def _hint(exc: Any, ctx: Any, message: str) -> str:
    command = ctx.command
    commands = getattr(command, "commands", None)
    help_cmd = f"{ctx.command_path} --help"
    if commands is not None and ("No such command" in message or not message):
        names = ", ".join(sorted(n for n, c in commands.items() if not getattr(c, "hidden", False)))
        return f"usage: {ctx.command_path} COMMAND ...   commands: {names}   ({help_cmd})"
    extra = re.search(r"unexpected extra argument(?:\(s\)|s)? \((.+)\)", message)
    if extra is not None:
        paths = [p for p in getattr(command, "params", ()) if getattr(p, "param_type_name", "") == "option"
                 and _is_path(p)]
        if paths:
            opt = max(paths[0].opts, key=len)
            return f"did you mean: {ctx.command_path} {opt} {extra.group(1)}   (every option: {help_cmd})"
    return f"usage: {usage_line(ctx)}   (every option: {help_cmd})"


class _Where:
    """The command an error without a context belongs to (found by walking ``args``)."""

    def __init__(self, command: Any, command_path: str) -> None:
        self.command = command
        self.command_path = command_path


def _locate(root: Any, args: Sequence[str]) -> _Where:
    command, path = root, [PROG]
    for arg in args:
        commands = getattr(command, "commands", None)
        if commands is None:
            break
        if arg in commands:  # anything else is an option of the group or its value
            command = commands[arg]
        path.append(arg)
    return _Where(command, " ".join(path))


def explain(exc: Any, args: Sequence[str], root: Any = None) -> list[str]:
    """One or two lines for a typer/click usage error raised while parsing ``args``
    (``root``: the top-level click command, to place an error that carries no context)."""
    message = _message(exc, args)
    lines = [f"error: {message}"] if message else []
    ctx = getattr(exc, "ctx", None)
    if ctx is None and root is not None:
        ctx = _locate(root, args)
    if ctx is not None and getattr(ctx, "command", None) is not None:
        lines.append(_hint(exc, ctx, message))
    elif not lines:
        lines.append(f"error: invalid command line ({PROG} --help)")
    return lines
