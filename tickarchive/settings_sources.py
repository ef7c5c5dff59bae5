"""Where a setting came from, and its problem in plain words.

``load_settings`` (``tickarchive.settings``) validates every source together; when a value
is bad this module names the source it came from — the environment variable, or the TOML
file and line — and says what is wrong without pydantic's internal wording::

    /etc/tickarchive.toml line 2: questdb.http_port = 'abc' must be a whole number
    environment variable TICKARCHIVE_API__PORT: api.port = '99999' must be at most 65535
    environment variable TICKARCHIVE_QUESTDB__HTP_PORT: questdb has no setting htp_port (did you mean http_port?)

The TOML line is found by reading the file's table headers and keys (``[section]`` then
``key = ...``, or a dotted ``section.key = ...``); tomllib itself keeps no positions.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "TICKARCHIVE_"
NESTED = "__"

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_\-]+)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=")


def env_name(loc: Sequence[str]) -> str:
    return ENV_PREFIX + NESTED.join(loc).upper()


def split_list(value: Any) -> Any:
    """A list setting from the environment: ``ETH,BTC`` or JSON ``["ETH","BTC"]``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            raise ValueError(
                "is neither a comma-separated list nor a JSON list: write ETH,BTC or [\"ETH\",\"BTC\"]"
            ) from None
        return decoded
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A config file's text and where each of its keys is defined."""

    path: Path
    lines: dict[tuple[str, ...], int]
    """``(section,)`` and ``(section, key)`` -> 1-based line number."""

    @classmethod
    def read(cls, path: Path) -> tuple[TomlFile, dict[str, Any]]:
        """Parse the file; a syntax error names the file (``ValueError``)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"config file {path}: cannot read it: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"config file {path}: not UTF-8 text ({exc.reason})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        return cls(path, _key_lines(text)), data

    def where(self, loc: Sequence[str]) -> str | None:
        """``FILE line N`` of the setting (or its section), None when the file does not set it."""
        for n in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line is not None:
                return f"{self.path} line {line}"
        return None


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header is not None:
            table = (header.group(1),)
            out.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key is not None:
            path = (*table, *(part.strip() for part in key.group(1).split(".")))
            for n in range(1, len(path) + 1):
                out.setdefault(path[:n], number)
    return out


def env_set(loc: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The environment variable that sets ``loc`` (names are case-insensitive), if any."""
    wanted = env_name(loc).upper()
    for name in environ:
        if name.upper() == wanted:
            return name
    return None


def unknown_env(sections: Mapping[str, set[str]], environ: Mapping[str, str]) -> list[str]:
    """``TICKARCHIVE_<SECTION>__<FIELD>`` variables naming a section that does not exist
    (pydantic-settings would silently ignore them); unknown fields of a known section are
    reported by validation."""
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or NESTED not in upper:
            continue
        section = upper[len(ENV_PREFIX):].split(NESTED, 1)[0].lower()
        if section not in sections:
            problems.append(f"environment variable {name}: there is no settings section {section!r}"
                            f"{_suggest(section, sections)}; sections: {', '.join(sections)}")
    return problems


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


_WORDING = (
    (re.compile(r"^Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number.*"), "must be a number"),
    (re.compile(r"^Input should be a valid boolean.*"), "must be true or false"),
    (re.compile(r"^Input should be a valid string.*"), "must be text"),
    (re.compile(r"^Input should be a valid (tuple|list|array).*"), "must be a list"),
    (re.compile(r"^Input should be less than or equal to (.+)$"), r"must be at most \1"),
    (re.compile(r"^Input should be greater than or equal to (.+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than (.+)$"), r"must be less than \1"),
    (re.compile(r"^Input should be greater than (.+)$"), r"must be greater than \1"),
    (re.compile(r"^Input should be (.+)$"), r"must be \1"),
    (re.compile(r"^String should match pattern '(.+)'$"), r"must match \1"),
    (re.compile(r"^Value error, (.+)$"), r"\1"),
)


def plain(message: str) -> str:
    for pattern, words in _WORDING:
        if pattern.match(message):
            return pattern.sub(words, message)
    return message


def explain(
    errors: Sequence[Mapping[str, Any]],
    fields: Mapping[str, set[str]],
    toml: TomlFile | None,
    environ: Mapping[str, str],
) -> list[str]:
    """One line per validation error: source, setting, problem (``fields``: section -> names)."""
    lines = []
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        env = env_set(loc, environ)
        if env is None and len(loc) > 1:
            env = env_set(loc[:1], environ)  # a whole section given as JSON
        in_file = toml.where(loc) if toml is not None else None
        if env is not None:
            where = f"environment variable {env}"
        elif in_file is not None:
            where = in_file
        else:
            where = "settings"
        setting = ".".join(loc)
        value = err.get("input")
        if err.get("type") == "extra_forbidden":
            if len(loc) == 1:
                problem = f"there is no settings section {loc[0]!r}{_suggest(loc[0], fields)}"
            else:
                section = loc[0]
                problem = (f"{section} has no setting {loc[-1]!r}"
                           f"{_suggest(loc[-1], fields.get(section, set()))}")
            lines.append(f"{where}: {problem}")
            continue
        lines.append(f"{where}: {setting} = {value!r} {plain(str(err['msg']))}")
    return lines


_SECTION_JSON = re.compile(r'error parsing value for field "([^"]+)" from source "EnvSettingsSource"')


def explain_decode_error(message: str) -> str:
    """pydantic-settings' message for a whole section given as malformed JSON, in plain words."""
    found = _SECTION_JSON.search(message)
    if found is None:
        return f"environment: {message}"
    section = found.group(1)
    name = env_name([section])
    return (f"environment variable {name}: not a JSON object; set one setting at a time instead, "
            f"e.g. {name}{NESTED}<SETTING>=value")
