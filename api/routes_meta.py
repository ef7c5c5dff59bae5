"""What the archive holds: /instruments (instruments and their state at an instant) and
/coverage (per day, instrument and table: rows, trade_seq completeness, gap seconds)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tickarchive import venues
from tickarchive.api import coverage as cov
from tickarchive.api import gap_cover, query
from tickarchive.api import params as p
from tickarchive.api.context import CallerDep, Ctx
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import InvalidRequest, ResultTooLarge
from tickarchive.api.output import TimeFormat, respond
from tickarchive.api.routes_common import (
    Call,
    CursorQ,
    FormatQ,
    LimitQ,
    OptTimeQ,
    TimeFormatQ,
    binding,
    empty_note,
)
from tickarchive.api.schemas import (
    CURRENCY_PATTERN,
    DAY_PATTERN,
    INSTRUMENT_PATTERN,
    CoveragePage,
    InstrumentsPage,
    page_responses,
)
from tickarchive.api.tiers import Tier
from tickarchive.api.timefmt import US_PER_DAY, day_start_us, parse_day, parse_time
from tickarchive.api.warm import COVERAGE_SCHEMA
from tickarchive.errors import TickarchiveError
from tickarchive.settings import Settings
from tickarchive.tables import BOOK_CHANGES, GAPS, INSTRUMENTS, QUOTES, TRADES

log = logging.getLogger(__name__)

router = APIRouter()

GAP_LOOKBACK_US = 7 * US_PER_DAY
KINDS = ("option", "future", "spot", "future_combo", "option_combo")
COVERAGE_TABLES = {"quotes": QUOTES, "trades": TRADES, "book_changes": BOOK_CHANGES}


def fold_instruments(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per instrument: ts, recv_ts and state of its latest row; every other field
    from its latest row that has it (``instrument.state`` notifications carry only the
    name and the state, ``get_instruments`` the full description)."""
    latest = ("ts", "recv_ts", "state")
    aggs = [
        pl.col(c).last() if c in latest else pl.col(c).drop_nulls().last()
        for c in INSTRUMENTS.column_names
        if c != "instrument"
    ]
    return rows.sort("ts").group_by("instrument").agg(aggs).select(INSTRUMENTS.column_names).sort("instrument")


@router.get(
    "/instruments",
    summary="Instruments and their state as of an instant",
    response_model=None,
    responses=page_responses(InstrumentsPage),
)
def instruments(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    currency: Annotated[
        str | None, Query(description="base currency, e.g. ETH", max_length=16, pattern=CURRENCY_PATTERN)
    ] = None,
    kind: Annotated[
        Literal["option", "future", "spot", "future_combo", "option_combo"] | None,
        Query(description="instrument kind"),
    ] = None,
    expiry: Annotated[
        str | None, Query(description="expiration date, YYYY-MM-DD", max_length=10, pattern=DAY_PATTERN)
    ] = None,
    at: OptTimeQ = None,
    active: Annotated[bool, Query(description="only instruments open and not expired at 'at'")] = False,
    lookback_days: Annotated[int, Query(ge=1, le=400, description="how far back to look for state rows")] = 31,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    asked_at = parse_time("at", at) if at else call.now_us
    n = p.limit(limit, a.default_limit, a.max_rows)
    out = call.format(format)
    k = p.one_of("kind", kind, KINDS)
    at_us = min(asked_at, caller.horizon_us(call.now_us))
    lo = at_us - lookback_days * US_PER_DAY
    if caller.plan is not None and caller.plan.history_days is not None:
        lo = max(lo, call.now_us - caller.plan.history_days * US_PER_DAY)
    bound = binding("instruments", currency, kind, expiry, asked_at if at else "now", active, lookback_days)
    offset = c.skip if (c := call.cursor(cursor, bound)) is not None else 0
    page = query.rows(ctx.stores, INSTRUMENTS, INSTRUMENTS.column_names, lo, at_us + 1, None, {}, a.max_rows, None)
    if page.cursor is not None:
        raise ResultTooLarge(f"more than api.max_rows ({a.max_rows}) instrument rows; lower lookback_days")
    frame = fold_instruments(page.frame)
    if currency:
        frame = frame.filter(pl.col("base_currency") == p.currency(currency))
    if k:
        frame = frame.filter(pl.col("kind") == k)
    if expiry:
        day = parse_day("expiry", expiry)
        start = day_start_us(day)
        frame = frame.filter((pl.col("expiration") >= start) & (pl.col("expiration") < start + US_PER_DAY))
    if active:
        frame = frame.filter(
            (pl.col("state") == "open")
            & (pl.col("expiration").is_null() | (pl.col("expiration") > at_us))
            & (pl.col("creation").is_null() | (pl.col("creation") <= at_us))
        )
    total = frame.height
    n = caller.row_budget(n, call.now_us)
    frame = frame.slice(offset, n)
    nxt = Cursor(0, offset + n) if offset + n < total else None
    meta = {"note": "no instrument matches the filters"} if total == 0 else {}
    call.charge(frame)
    return respond(
        frame,
        ("ts", "recv_ts", "expiration", "creation"),
        out,
        time_format,
        name="instruments",
        next_cursor=call.encode(nxt, bound),
        meta=meta,
    )


_CONNECTIONS: dict[int, gap_cover.Connections] = {}


def venue_connections(settings: Settings) -> gap_cover.Connections:
    """Which collector connection (``c0``, ``c1``, ...) carries what, from the venue's
    channel plan under ``settings`` (cached per settings object)."""
    key = id(settings)
    found = _CONNECTIONS.get(key)
    if found is not None:
        return found
    try:
        plan = venues.load(settings).plan
    except (TickarchiveError, ImportError) as exc:
        log.warning("coverage: no channel plan (%s); every connection gap counts for every instrument", exc)
        conns = gap_cover.UNKNOWN
    else:
        global_ = frozenset(f"c{i}" for i, chans in enumerate(plan.layout([])) if chans)
        conns = gap_cover.Connections(lambda name: f"c{plan.shard(name)}", global_)
    _CONNECTIONS.clear()
    _CONNECTIONS[key] = conns
    return conns


@router.get(
    "/coverage",
    summary="Per day and instrument: rows, trade_seq completeness, gap seconds",
    response_model=None,
    responses=page_responses(CoveragePage),
)
def coverage(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    start_day: Annotated[
        str, Query(description="first day, YYYY-MM-DD", max_length=10, pattern=DAY_PATTERN, examples=["2026-10-05"])
    ],
    end_day: Annotated[
        str,
        Query(description="last day (inclusive), YYYY-MM-DD", max_length=10, pattern=DAY_PATTERN,
              examples=["2026-10-06"]),
    ],
    instrument: Annotated[
        str | None, Query(description="instrument or pattern", max_length=64, pattern=INSTRUMENT_PATTERN)
    ] = None,
    table: Annotated[
        Literal["quotes", "trades", "book_changes"] | None, Query(description="one table (default: all three)")
    ] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    first, last = parse_day("start_day", start_day), parse_day("end_day", end_day)
    if last < first:
        raise InvalidRequest("parameters 'start_day' and 'end_day': end_day is before start_day")
    if (last - first).days + 1 > a.max_span_days:
        raise InvalidRequest(
            f"parameters 'start_day' and 'end_day': more than {a.max_span_days} days (api.max_span_days)"
        )
    lo, hi = day_start_us(first), day_start_us(last) + US_PER_DAY
    caller.check_history(lo, call.now_us, "start_day")
    chosen = p.one_of("table", table, tuple(COVERAGE_TABLES))
    names = [chosen] if chosen else list(COVERAGE_TABLES)
    match = call.match(instrument) if instrument else None
    out = call.format(format)
    budget = caller.row_budget(a.max_rows, call.now_us) + 1
    warm = ctx.stores.warm.coverage_daily(names, first, last, match, budget)
    parts = [warm]
    have = warm.height
    for name in names:
        for seg in ctx.stores.segments(COVERAGE_TABLES[name], lo, hi):
            if seg.tier is not Tier.HOT or have >= budget:
                continue
            raw = ctx.stores.hot.coverage(COVERAGE_TABLES[name], seg.lo_us, seg.hi_us, match, budget - have)
            if raw.height == 0:
                continue
            rows = cov.hot_rows(name, raw)
            days = rows.get_column("day").unique().to_list()
            parts[0] = parts[0].filter(~(pl.col("day").is_in(days) & (pl.col("table_name") == name)))
            parts.append(rows)
            have = sum(x.height for x in parts)
    frame = pl.concat(parts).cast(COVERAGE_SCHEMA)  # type: ignore[arg-type]
    if frame.height >= budget:
        raise ResultTooLarge(f"more than {budget - 1} coverage rows (api.max_rows or the rows left today); add filters")
    frame = _with_gap_seconds(call, frame, lo, hi).sort("day", "table_name", "instrument")
    meta = empty_note(call, match, "rows", lo, hi) if frame.height == 0 else {}
    call.charge(frame)
    frame = frame.with_columns(pl.col("day").cast(pl.String))
    return respond(frame, (), out, time_format, name="coverage", meta=meta)


def _with_gap_seconds(call: Call, frame: pl.DataFrame, lo_us: int, hi_us: int) -> pl.DataFrame:
    """``gap_seconds`` of every row from the gap rows of the range (``api.gap_cover``)."""
    if frame.height == 0:
        return frame
    a = call.ctx.settings.api
    page = query.rows(call.ctx.stores, GAPS, GAPS.column_names, lo_us - GAP_LOOKBACK_US, hi_us, None, {},
                      a.max_rows, None)
    gaps = [
        gap_cover.GapSpan(ts, end, inst, kind, conn, status)
        for ts, end, inst, kind, conn, status in page.frame.select(
            "ts", "end_ts", "instrument", "kind", "connection", "status"
        ).iter_rows()
    ]
    conns = venue_connections(call.ctx.settings)
    shared = [g for g in gaps if g.instrument == "*" or g.instrument.startswith("trades.")]
    own: dict[str, list[gap_cover.GapSpan]] = {}
    for g in gaps:
        own.setdefault(g.instrument, []).append(g)
    seconds = []
    for day, inst, table in frame.select("day", "instrument", "table_name").iter_rows():
        start = day_start_us(day)
        candidates = own.get(inst, []) + shared
        seconds.append(gap_cover.gap_seconds(candidates, inst, table, start, start + US_PER_DAY, call.now_us, conns))
    return frame.with_columns(pl.Series("gap_seconds", seconds, dtype=pl.Float64))
