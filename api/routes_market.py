"""Market views: /chain (the option chain at an instant), /book (an order book rebuilt at
an instant), /ohlcv (trade bars)."""

from __future__ import annotations

from typing import Annotated

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tickarchive.api import chain as chainmod
from tickarchive.api import ohlcv as ohlcvmod
from tickarchive.api import params as p
from tickarchive.api import query
from tickarchive.api.book import BookRow, reconstruct
from tickarchive.api.context import CallerDep, Ctx
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import InvalidRequest, NotFound, ResultTooLarge, UnknownInstrument
from tickarchive.api.frames import time_columns
from tickarchive.api.output import Format, JsonResponse, TimeFormat, respond
from tickarchive.api.routes_common import (
    Call,
    CursorQ,
    FormatQ,
    LimitQ,
    NameQ,
    TimeFormatQ,
    TimeQ,
    binding,
    columns_param,
    empty_note,
)
from tickarchive.api.schemas import CURRENCY_PATTERN, INTERVAL_PATTERN, Book, ChainPage, OhlcvPage, page_responses
from tickarchive.api.timefmt import US_PER_S, iso, parse_time
from tickarchive.tables import BOOK_CHANGES, QUOTES, TRADES

router = APIRouter()

ChainColumnsQ = Annotated[str | None, columns_param(QUOTES)]
CurrencyQ = Annotated[
    str, Query(description="ETH, BTC, ...", min_length=2, max_length=16, pattern=CURRENCY_PATTERN, examples=["ETH"])
]


@router.get(
    "/chain",
    summary="The option chain as of an instant: the last quote of every live option",
    response_model=None,
    responses=page_responses(ChainPage),
)
def chain(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    currency: CurrencyQ,
    at: TimeQ,
    lookback_s: Annotated[
        int | None,
        Query(ge=1, le=31 * 86400, description="only quotes newer than at - lookback_s (default api.chain_lookback_s)"),
    ] = None,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    columns: ChainColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    cur = p.currency(currency)
    asked_at = parse_time("at", at)
    lb = a.chain_lookback_s if lookback_s is None else lookback_s
    if not 1 <= lb <= a.chain_max_lookback_s:
        raise InvalidRequest(
            f"parameter 'lookback_s': must be between 1 and {a.chain_max_lookback_s} (api.chain_max_lookback_s)"
        )
    caller.check_history(asked_at - lb * US_PER_S, call.now_us, "at")
    n = p.limit(limit, a.default_limit, a.max_rows)
    cols = p.columns(QUOTES, columns)
    out = call.format(format)
    at_us, headers = call.horizon(asked_at + 1)
    at_us = min(asked_at, at_us)
    bound = binding("chain", cur, asked_at, lb)
    offset = c.skip if (c := call.cursor(cursor, bound)) is not None else 0
    match = p.InstrumentMatch("instrument", regex=chainmod.chain_regex(cur))
    frame = query.latest(ctx.stores, QUOTES, cols, at_us - lb * US_PER_S, at_us, match, "instrument")
    live = [chainmod.live(name, at_us) for name in frame.get_column("instrument").to_list()]
    frame = frame.filter(pl.Series(live, dtype=pl.Boolean)) if frame.height else frame
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"the chain has {frame.height} rows, more than api.max_rows ({a.max_rows})")
    total = frame.height
    n = caller.row_budget(n, call.now_us)
    frame = frame.slice(offset, n)
    nxt = Cursor(asked_at, offset + n) if offset + n < total else None
    meta = {"currency": cur, "at": iso(at_us)}
    if total == 0:
        meta["note"] = f"no live {cur} option ticked in the {lb} s before {iso(at_us)}"
    call.charge(frame)
    resp = respond(
        frame,
        time_columns(QUOTES, cols),
        out,
        time_format,
        name=f"chain-{cur}",
        next_cursor=call.encode(nxt, bound),
        meta=meta,
    )
    resp.headers.update(headers)
    return resp


@router.get(
    "/book",
    summary="The order book of one instrument reconstructed at an instant",
    response_model=None,
    responses={200: {"model": Book, "content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def book(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    instrument: NameQ,
    at: TimeQ,
    depth: Annotated[int, Query(ge=1, le=10_000, description="levels per side, best first")] = 10,
    lookback_s: Annotated[
        int | None,
        Query(ge=1, le=31 * 86400, description="how far back to look for the snapshot (default api.book_lookback_s)"),
    ] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    match = call.match(instrument)
    if match.is_pattern:
        raise InvalidRequest("parameter 'instrument': /book takes one instrument name, not a pattern")
    asked_at = parse_time("at", at)
    lb = a.book_lookback_s if lookback_s is None else lookback_s
    caller.check_history(asked_at - lb * US_PER_S, call.now_us, "at")
    out = call.format(format)
    at_us, headers = call.horizon(asked_at + 1)
    at_us = min(asked_at, at_us)
    name = match.exact or ""
    snap = query.last_snapshot_ts(ctx.stores, BOOK_CHANGES, name, at_us - lb * US_PER_S, at_us)
    if snap is None:
        if not ctx.stores.instrument_known(name):
            raise UnknownInstrument(f"instrument {name!r} is unknown to this archive (never listed or stored)")
        raise NotFound(f"no book snapshot of {name} within {lb} s before {iso(at_us)}")
    budget = caller.row_budget(a.max_rows, call.now_us)
    page = query.rows(ctx.stores, BOOK_CHANGES, BOOK_CHANGES.column_names, snap, at_us + 1, match, {}, budget, None)
    if page.cursor is not None:
        raise ResultTooLarge(f"more than api.max_rows ({a.max_rows}) book changes since the snapshot; lower lookback_s")
    f = page.frame.sort("ts", "change_id", "side", "price")
    rows = (
        BookRow(*r)
        for r in f.select(
            "ts", "change_id", "prev_change_id", "is_snapshot", "side", "action", "price", "amount"
        ).iter_rows()
    )
    b = reconstruct(name, rows, depth)
    if b is None:
        raise NotFound(f"no book snapshot of {name} within {lb} s before {iso(at_us)}")
    call.charge(f)
    levels = pl.DataFrame(
        [("bid", i + 1, px, amt) for i, (px, amt) in enumerate(b.bids)]
        + [("ask", i + 1, px, amt) for i, (px, amt) in enumerate(b.asks)],
        schema={"side": pl.String, "level": pl.Int32, "price": pl.Float64, "amount": pl.Float64},
        orient="row",
    )
    if out is not Format.JSON:
        resp = respond(levels, (), out, time_format, name=f"book-{name}")
        resp.headers.update(headers)
        return resp

    def t(us: int) -> str | int:
        if time_format is TimeFormat.ISO:
            return iso(us)
        return us if time_format is TimeFormat.EPOCH_US else us // 1000

    return JsonResponse(
        {
            "instrument": name,
            "at": t(at_us),
            "snapshot_ts": t(b.snapshot_ts_us),
            "ts": t(b.ts_us),
            "change_id": b.change_id,
            "changes_applied": b.changes_applied,
            "sequence_breaks": b.sequence_breaks,
            "bids": [[px, amt] for px, amt in b.bids],
            "asks": [[px, amt] for px, amt in b.asks],
        },
        headers=headers,
    )


@router.get(
    "/ohlcv",
    summary="Trade OHLCV bars of one instrument (1m and multiples)",
    response_model=None,
    responses=page_responses(OhlcvPage),
)
def ohlcv(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    instrument: NameQ,
    start: TimeQ,
    end: TimeQ,
    interval: Annotated[
        str,
        Query(
            description="1m, 5m, 15m, 1h, 4h, 1d, ... (minutes dividing a day, or whole days)",
            max_length=10,
            pattern=INTERVAL_PATTERN,
        ),
    ] = "1m",
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    call = Call.of(ctx, caller, request)
    a = ctx.settings.api
    match = call.match(instrument)
    if match.is_pattern:
        raise InvalidRequest("parameter 'instrument': /ohlcv takes one instrument name, not a pattern")
    minutes = p.interval_minutes(interval)
    start_us, end_us = parse_time("start", start), parse_time("end", end)
    p.time_range(start_us, end_us, a.ohlcv_max_span_days, "api.ohlcv_max_span_days")
    caller.check_history(start_us, call.now_us)
    out = call.format(format)
    iv = minutes * ohlcvmod.US_PER_MIN
    hi_us, headers = call.horizon(end_us)
    lo, hi = start_us // iv * iv, -(-max(hi_us, start_us) // iv) * iv
    bars = query.minute_bars(ctx.stores, TRADES, match.exact or "", lo, hi, minutes) if hi_us > start_us else None
    if bars is None or bars.height == 0:
        meta = empty_note(call, match, "trades", start_us, max(hi_us, start_us))
        frame = ohlcvmod.empty()
    else:
        meta = {}
        frame = ohlcvmod.fold(bars, minutes).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"{frame.height} bars exceed api.max_rows ({a.max_rows}); use a longer interval")
    frame = frame.with_columns(pl.lit(match.exact).alias("instrument")).select(
        "ts", "instrument", *ohlcvmod.OUT_COLUMNS[1:]
    )
    call.charge(frame)
    resp = respond(frame, ("ts",), out, time_format, name=f"ohlcv-{match.exact}", meta=meta)
    resp.headers.update(headers)
    return resp
