"""What the data routes share: the documented query parameters, the request's caller and
clock, plan checks, cursors bound to their query, and the answer for an empty result
(unknown instrument vs no data in the range)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import polars as pl
from fastapi import Query, Request

from tickarchive.api import params as p
from tickarchive.api.auth import Caller
from tickarchive.api.context import AppContext
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import UnknownInstrument
from tickarchive.api.output import Format, TimeFormat, choose
from tickarchive.api.schemas import (
    COLUMNS_PATTERN,
    CURSOR_PATTERN,
    INSTRUMENT_PATTERN,
    NAME_PATTERN,
    TIME_PATTERN,
)
from tickarchive.api.timefmt import US_PER_S, iso
from tickarchive.tables import Table

TimeQ = Annotated[
    str,
    Query(
        description="ISO-8601 time (naive = UTC) or epoch s/ms/µs; 2000-01-01 .. 2100-01-01",
        max_length=40,
        pattern=TIME_PATTERN,
        examples=["2026-10-05T12:00:00Z"],
    ),
]
OptTimeQ = Annotated[
    str | None,
    Query(
        description="ISO-8601 time (naive = UTC) or epoch s/ms/µs; 2000-01-01 .. 2100-01-01",
        max_length=40,
        pattern=TIME_PATTERN,
    ),
]
FormatQ = Annotated[
    Format | None, Query(description="json (default), ndjson, csv or parquet; else the Accept header")
]
TimeFormatQ = Annotated[TimeFormat, Query(description="iso (default), epoch_us or epoch_ms")]
LimitQ = Annotated[
    int | None,
    Query(ge=1, description="rows per page (default api.default_limit, at most api.max_rows)"),
]
CursorQ = Annotated[
    str | None,
    Query(description="next_cursor of the previous page (same query)", max_length=200, pattern=CURSOR_PATTERN),
]
def columns_param(table: Table) -> Any:
    """The ``columns`` query parameter of ``table``: a comma-separated list of its column
    names (the pattern lists them)."""
    names = "|".join(table.column_names)
    return Query(
        description=f"comma-separated columns of {table.name} (ts and the dedup keys always)",
        max_length=2000,
        pattern=rf"^(?:{names})(?:,(?:{names}))*$",
    )


ColumnsQ = Annotated[
    str | None,
    Query(
        description="comma-separated columns (ts and the dedup keys always)", max_length=2000, pattern=COLUMNS_PATTERN
    ),
]
InstrumentQ = Annotated[
    str,
    Query(
        description="instrument name (ETH-27DEC24-4000-C) or pattern with * and ? (ETH-27DEC24-*; at most "
        "api.max_pattern_wildcards '*')",
        max_length=64,
        pattern=INSTRUMENT_PATTERN,
        examples=["ETH-27DEC24-4000-C", "ETH-27DEC24-*"],
    ),
]
NameQ = Annotated[
    str,
    Query(
        description="instrument name (no pattern)",
        max_length=64,
        pattern=NAME_PATTERN,
        examples=["ETH-27DEC24-4000-C"],
    ),
]


def now_us() -> int:
    return int(time.time() * US_PER_S)


@dataclass(frozen=True, slots=True)
class Call:
    """One data request: context, caller, the output format, and its clock."""

    ctx: AppContext
    caller: Caller
    request: Request
    now_us: int

    @classmethod
    def of(cls, ctx: AppContext, caller: Caller, request: Request) -> Call:
        return cls(ctx, caller, request, now_us())

    def format(self, fmt: Format | None) -> Format:
        out = choose(fmt.value if fmt is not None else None, self.request.headers.get("accept"))
        self.caller.check_format(out.value)
        return out

    def match(self, text: str, name: str = "instrument") -> p.InstrumentMatch:
        return p.instrument_match(text, name=name, max_wildcards=self.ctx.settings.api.max_pattern_wildcards)

    def horizon(self, end_us: int) -> tuple[int, dict[str, str]]:
        """``end_us`` cut to what the caller's plan may see now (delayed plans), and the
        headers saying so."""
        h = self.caller.horizon_us(self.now_us)
        if h >= end_us:
            return end_us, {}
        return h, {"X-Data-Delayed-Until": iso(h)}

    def cursor(self, text: str | None, binding: str) -> Cursor | None:
        if not text:
            return None
        return Cursor.decode(text, self.ctx.cursor_secret, binding, self.ctx.settings.api.max_rows)

    def encode(self, cursor: Cursor | None, binding: str) -> str | None:
        return cursor.encode(self.ctx.cursor_secret, binding) if cursor is not None else None

    def charge(self, frame: pl.DataFrame) -> None:
        c = self.caller
        if c.key_id is not None:
            c.charge(rows=frame.height)
            self.ctx.metrics.key_rows.labels(c.key_id, c.plan_name or "").inc(frame.height)


def binding(path: str, *parts: Any) -> str:
    """What a cursor is bound to: the endpoint and every parameter that selects rows."""
    return "|".join([path, *(str(x) for x in parts)])


def empty_note(
    call: Call, match: p.InstrumentMatch | None, what: str, lo_us: int, hi_us: int
) -> dict[str, Any]:
    """The ``note`` of an empty first page, or ``UnknownInstrument`` (404) for an exact
    name the archive has never seen."""
    span = f"[{iso(lo_us)}, {iso(hi_us)})"
    if match is None:
        return {"note": f"no {what} in {span}"}
    if match.exact is not None:
        if not call.ctx.stores.instrument_known(match.exact):
            raise UnknownInstrument(
                f"instrument {match.exact!r} is unknown to this archive (never listed or stored); "
                "GET /instruments lists the known ones"
            )
        return {"note": f"{match.exact} has no {what} in {span}"}
    return {"note": f"no instrument matching the pattern has {what} in {span}"}
