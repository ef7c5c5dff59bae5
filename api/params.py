"""Validation of query parameters into typed query specs (pure).

Instrument names follow Deribit's form (``ETH-27DEC24-4000-C``, ``ETH-PERPETUAL``,
``BTC_USDC``): ``^[A-Z0-9_]+(-[A-Za-z0-9_]+)*$``. A pattern may use ``*`` (any run of
characters) and ``?`` (one character), e.g. ``ETH-27DEC24-*``; it becomes an anchored
regular expression that QuestDB (``~``), PostgreSQL (``~``) and polars all read the same
way (the allowed characters carry no other regex meaning).

Pattern cost is bounded: at most ``max_wildcards`` ``*`` (runs like ``**`` count once), at
most ``MAX_NAME_LEN`` characters. PostgreSQL's and polars' regex engines do not backtrack
exponentially; QuestDB's (``java.util.regex``) does: ``*?*?*?*?*?-Z`` as ``.*..*..*.``
took minutes per row. QuestDB therefore gets an equivalent linear form (``hot_regex``):
the literal parts between the stars are matched leftmost inside atomic groups
(``^A(?>.*?B)(?>.*?C).*D$``), which for a glob finds a match exactly when one exists
(placing each middle part as early as possible leaves the most room for the rest) and
never revisits a part once placed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tickarchive.api.errors import InvalidRequest
from tickarchive.api.timefmt import US_PER_DAY
from tickarchive.tables import Table

NAME_RE = re.compile(r"^[A-Z0-9_]+(-[A-Za-z0-9_]+)*$")
GLOB_RE = re.compile(r"^[A-Za-z0-9_*?]+(-[A-Za-z0-9_*?]+)*$")
CURRENCY_RE = re.compile(r"^[A-Z0-9_]{2,16}$")
MAX_NAME_LEN = 64


DEFAULT_MAX_WILDCARDS = 3


@dataclass(frozen=True, slots=True)
class InstrumentMatch:
    """Rows whose ``column`` equals ``exact`` or matches the anchored ``regex``
    (``atomic_regex``: the same set, in the form QuestDB evaluates in linear time)."""

    column: str
    exact: str | None = None
    regex: str | None = None
    atomic_regex: str | None = None

    @property
    def is_pattern(self) -> bool:
        return self.regex is not None

    @property
    def hot_regex(self) -> str | None:
        """The regex to send to QuestDB."""
        return self.atomic_regex or self.regex


def glob_regexes(pattern: str) -> tuple[str, str]:
    """(portable regex, QuestDB atomic regex) of a validated glob (pure)."""
    parts = [p.replace("?", ".") for p in pattern.split("*")]
    # runs of '*' are one '*': drop the empty middle parts they leave
    parts = [parts[0], *[p for p in parts[1:-1] if p], parts[-1]] if len(parts) > 1 else parts
    if len(parts) == 1:
        plain = "^" + parts[0] + "$"
        return plain, plain
    portable = "^" + ".*".join(parts) + "$"
    middle = "".join(f"(?>.*?{p})" for p in parts[1:-1])
    return portable, f"^{parts[0]}{middle}.*{parts[-1]}$"


def instrument_match(
    text: str, column: str = "instrument", name: str = "instrument", max_wildcards: int = DEFAULT_MAX_WILDCARDS
) -> InstrumentMatch:
    raw = text.strip()
    if not raw:
        raise InvalidRequest(f"parameter {name!r}: empty")
    if len(raw) > MAX_NAME_LEN:
        raise InvalidRequest(f"parameter {name!r}: longer than {MAX_NAME_LEN} characters")
    if "*" in raw or "?" in raw:
        if not GLOB_RE.match(raw):
            raise InvalidRequest(
                f"parameter {name!r}: {raw!r} is not an instrument pattern; use letters, digits, '_', '-', "
                "'*' and '?' (e.g. ETH-27DEC24-*)"
            )
        stars = len([run for run in re.split(r"[^*]+", raw) if run])
        if stars > max_wildcards:
            raise InvalidRequest(
                f"parameter {name!r}: {raw!r} has {stars} '*' wildcards, more than {max_wildcards} "
                "(api.max_pattern_wildcards); be more specific"
            )
        portable, atomic = glob_regexes(raw)
        return InstrumentMatch(column, regex=portable, atomic_regex=atomic)
    if not NAME_RE.match(raw):
        raise InvalidRequest(
            f"parameter {name!r}: {raw!r} is not an instrument name (e.g. ETH-27DEC24-4000-C: "
            "upper-case letters, digits and '_', parts joined by '-')"
        )
    return InstrumentMatch(column, exact=raw)


def currency(text: str) -> str:
    raw = text.strip().upper()
    if not CURRENCY_RE.match(raw):
        raise InvalidRequest(f"parameter 'currency': {text!r} is not a currency code (e.g. ETH, BTC)")
    return raw


def time_range(start_us: int, end_us: int, max_span_days: int, setting: str = "api.max_span_days") -> None:
    if start_us >= end_us:
        raise InvalidRequest("parameters 'start' and 'end': start must be before end")
    if end_us - start_us > max_span_days * US_PER_DAY:
        raise InvalidRequest(
            f"parameters 'start' and 'end': the range spans more than {max_span_days} days "
            f"({setting}); split the query"
        )


def limit(value: int | None, default: int, max_rows: int) -> int:
    if value is None:
        return min(default, max_rows)
    if value < 1:
        raise InvalidRequest("parameter 'limit': must be at least 1")
    if value > max_rows:
        raise InvalidRequest(
            f"parameter 'limit': {value} exceeds the maximum result size {max_rows} (api.max_rows); "
            "page through the result with 'cursor'"
        )
    return value


def columns(table: Table, text: str | None) -> tuple[str, ...]:
    """The requested columns of ``table`` (all by default); ``ts`` and the dedup keys always."""
    if text is None or not text.strip():
        return table.column_names
    wanted = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in table.column_names]
    if unknown:
        raise InvalidRequest(
            f"parameter 'columns': unknown column(s) {', '.join(repr(c)[:40] for c in unknown[:5])}; "
            f"{table.name} has {', '.join(table.column_names)}"
        )
    keep = set(wanted) | set(table.dedup_keys)
    return tuple(c for c in table.column_names if c in keep)


def one_of(name: str, text: str | None, allowed: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    if text not in allowed:
        raise InvalidRequest(f"parameter {name!r}: {text[:40]!r} is not one of {', '.join(allowed)}")
    return text


_INTERVAL_RE = re.compile(r"^([0-9]{1,5})(m|h|d)$")
_UNIT_MIN = {"m": 1, "h": 60, "d": 1440}


def interval_minutes(text: str) -> int:
    """``1m``, ``5m``, ``1h``, ``1d``...: a whole number of minutes dividing a day or whole days."""
    m = _INTERVAL_RE.match(text.strip())
    if not m:
        raise InvalidRequest(f"parameter 'interval': {text[:20]!r} is not an interval like 1m, 5m, 1h or 1d")
    minutes = int(m.group(1)) * _UNIT_MIN[m.group(2)]
    if minutes < 1 or minutes > 31 * 1440:
        raise InvalidRequest("parameter 'interval': must be between 1m and 31d")
    if minutes < 1440 and 1440 % minutes != 0:
        raise InvalidRequest(f"parameter 'interval': {text!r} does not divide a day (use e.g. 1m, 5m, 15m, 1h, 4h)")
    if minutes >= 1440 and minutes % 1440 != 0:
        raise InvalidRequest(f"parameter 'interval': {text!r} is not a whole number of days")
    return minutes
