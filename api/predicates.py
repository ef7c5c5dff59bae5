"""The WHERE clause of a row query, shared by the hot (QuestDB) and warm (PostgreSQL)
readers: a time range, an instrument match (exact or regex), and equality filters, all as
bind parameters. Only identifiers differ between the dialects (``quote``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tickarchive.api.params import InstrumentMatch
from tickarchive.api.timefmt import to_dt


def plain(name: str) -> str:
    """QuestDB: column names from ``tickarchive.tables`` need no quoting."""
    return name


def double_quoted(name: str) -> str:
    """PostgreSQL: a quoted identifier (names come from ``tickarchive.tables`` only)."""
    return f'"{name}"'


def where(
    lo_us: int,
    hi_us: int,
    match: InstrumentMatch | None,
    eq: Mapping[str, Any],
    *,
    quote: Callable[[str], str],
    hi_inclusive: bool = False,
) -> tuple[str, list[Any]]:
    """``ts`` in [lo, hi) (or [lo, hi]), the instrument match, and ``column = value`` filters."""
    parts = ["ts >= %s", "ts <= %s" if hi_inclusive else "ts < %s"]
    params: list[Any] = [to_dt(lo_us), to_dt(hi_us)]
    if match is not None:
        if match.exact is not None:
            parts.append(f"{quote(match.column)} = %s")
            params.append(match.exact)
        else:
            parts.append(f"{quote(match.column)} ~ %s")
            params.append(match.regex)
    for col, value in eq.items():
        parts.append(f"{quote(col)} = %s")
        params.append(value)
    return " AND ".join(parts), params
