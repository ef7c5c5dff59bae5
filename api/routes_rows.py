"""Paged row endpoints: /quotes, /trades, /gaps.

Handlers are plain functions (run in the threadpool); each validates its parameters into
a query (``api.params``), applies the caller's plan (history depth, delay, format, rows
left today), runs it across tiers (``api.query``) and renders the result (``api.output``).
"""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tickarchive.api import frames, query
from tickarchive.api import params as p
from tickarchive.api.context import CallerDep, Ctx
from tickarchive.api.frames import time_columns
from tickarchive.api.output import TimeFormat, respond
from tickarchive.api.routes_common import (
    Call,
    CursorQ,
    FormatQ,
    InstrumentQ,
    LimitQ,
    OptTimeQ,
    TimeFormatQ,
    TimeQ,
    binding,
    columns_param,
    empty_note,
)
from tickarchive.api.schemas import INSTRUMENT_PATTERN, GapsPage, QuotesPage, TradesPage, page_responses
from tickarchive.api.timefmt import US_PER_DAY, parse_time
from tickarchive.domain import GapKind, GapStatus
from tickarchive.tables import GAPS, QUOTES, TRADES, Table

router = APIRouter()

GAP_LOOKBACK_US = 7 * US_PER_DAY
"""/gaps also returns gaps that started up to this long before ``start`` and are still open at it."""

QuoteColumnsQ = Annotated[str | None, columns_param(QUOTES)]
TradeColumnsQ = Annotated[str | None, columns_param(TRADES)]
GapKindQ = Annotated[GapKind | None, Query(description="gap kind")]
GapStatusQ = Annotated[GapStatus | None, Query(description="gap status")]


def _rows_endpoint(
    call: Call,
    table: Table,
    instrument: str,
    start: str,
    end: str,
    limit: int | None,
    cursor: str | None,
    columns: str | None,
    fmt: Any,
    time_format: TimeFormat,
) -> Response:
    a = call.ctx.settings.api
    match = call.match(instrument)
    start_us, end_us = parse_time("start", start), parse_time("end", end)
    p.time_range(start_us, end_us, a.max_span_days)
    call.caller.check_history(start_us, call.now_us)
    n = p.limit(limit, a.default_limit, a.max_rows)
    cols = p.columns(table, columns)
    out = call.format(fmt)
    bound = binding(table.name, instrument, start_us, end_us)
    cur = call.cursor(cursor, bound)
    hi, headers = call.horizon(end_us)
    meta: dict[str, Any] = {}
    if start_us >= hi:
        page = query.Page(pl.DataFrame(schema=frames.schema(table, cols)), None)
        delay = call.caller.plan.live_delay_s if call.caller.plan else 0
        meta["note"] = f"this key's plan delays data by {delay} s: nothing in the range is visible yet"
    else:
        n = call.caller.row_budget(n, call.now_us)
        page = query.rows(call.ctx.stores, table, cols, start_us, hi, match, {}, n, cur)
        if page.frame.height == 0 and cur is None:
            meta = empty_note(call, match, table.name, start_us, hi)
    frame = page.frame
    call.charge(frame)
    resp = respond(
        frame,
        time_columns(table, cols),
        out,
        time_format,
        name=table.name,
        next_cursor=call.encode(page.cursor, bound),
        meta=meta,
    )
    resp.headers.update(headers)
    return resp


@router.get(
    "/quotes",
    summary="Quotes (ticker rows) of an instrument or pattern over [start, end)",
    response_model=None,
    responses=page_responses(QuotesPage),
)
def quotes(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    instrument: InstrumentQ,
    start: TimeQ,
    end: TimeQ,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    columns: QuoteColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    return _rows_endpoint(call, QUOTES, instrument, start, end, limit, cursor, columns, format, time_format)


@router.get(
    "/trades",
    summary="Trades of an instrument or pattern over [start, end)",
    response_model=None,
    responses=page_responses(TradesPage),
)
def trades(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    instrument: InstrumentQ,
    start: TimeQ,
    end: TimeQ,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    columns: TradeColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    return _rows_endpoint(call, TRADES, instrument, start, end, limit, cursor, columns, format, time_format)


@router.get(
    "/gaps",
    summary="Recorded gaps overlapping [start, end)",
    response_model=None,
    responses=page_responses(GapsPage),
)
def gaps(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    start: OptTimeQ = None,
    end: OptTimeQ = None,
    instrument: Annotated[
        str | None,
        Query(
            description="instrument, pattern, or * (whole-connection gaps only)",
            max_length=64,
            pattern=INSTRUMENT_PATTERN,
        ),
    ] = None,
    kind: GapKindQ = None,
    status: GapStatusQ = None,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    end_us = parse_time("end", end) if end else call.now_us
    start_us = parse_time("start", start) if start else end_us - GAP_LOOKBACK_US
    p.time_range(start_us, end_us, a.max_span_days)
    call.caller.check_history(start_us, call.now_us)
    match = None
    if instrument == "*":
        match = p.InstrumentMatch("instrument", exact="*")
    elif instrument:
        match = call.match(instrument)
    eq: dict[str, Any] = {}
    if kind is not None:
        eq["kind"] = kind.value
    if status is not None:
        eq["status"] = status.value
    n = call.caller.row_budget(p.limit(limit, a.default_limit, a.max_rows), call.now_us)
    out = call.format(format)
    bound = binding("gaps", instrument, start_us, end_us, sorted(eq.items()))
    cur = call.cursor(cursor, bound)
    hi, headers = call.horizon(end_us)
    page = query.rows(ctx.stores, GAPS, GAPS.column_names, start_us - GAP_LOOKBACK_US, max(hi, start_us), match, eq,
                      n, cur)
    frame = page.frame.filter(pl.col("end_ts").is_null() | (pl.col("end_ts") >= start_us))
    call.charge(frame)
    resp = respond(
        frame, ("ts", "end_ts"), out, time_format, name="gaps", next_cursor=call.encode(page.cursor, bound)
    )
    resp.headers.update(headers)
    return resp
