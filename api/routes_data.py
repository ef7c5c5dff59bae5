"""The data endpoints: /quotes, /trades, /gaps, /chain, /book, /ohlcv, /instruments, /coverage.

Handlers are plain functions (run in the threadpool); each validates its parameters into
a query (``api.params``), runs it across tiers (``api.query``) and renders the result
(``api.output``). Anything invalid is a 422 naming the parameter.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from tickarchive.api import chain as chainmod
from tickarchive.api import coverage as cov
from tickarchive.api import ohlcv as ohlcvmod
from tickarchive.api import params as p
from tickarchive.api import query
from tickarchive.api.book import BookRow, reconstruct
from tickarchive.api.context import Ctx, authorize
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import InvalidRequest, NotFound, ResultTooLarge
from tickarchive.api.frames import time_columns
from tickarchive.api.output import Format, JsonResponse, TimeFormat, choose, respond
from tickarchive.api.tiers import Tier
from tickarchive.api.timefmt import US_PER_DAY, US_PER_S, day_start_us, iso, parse_day, parse_time
from tickarchive.api.warm import COVERAGE_SCHEMA
from tickarchive.tables import BOOK_CHANGES, GAPS, INSTRUMENTS, QUOTES, TRADES, Table

router = APIRouter(dependencies=[Depends(authorize)])

TimeQ = Annotated[str, Query(description="ISO-8601 time (naive = UTC) or epoch s/ms/µs", max_length=40)]
OptTimeQ = Annotated[str | None, Query(description="ISO-8601 time (naive = UTC) or epoch s/ms/µs", max_length=40)]
FormatQ = Annotated[str | None, Query(description="json (default), ndjson, csv or parquet; else the Accept header")]
TimeFormatQ = Annotated[TimeFormat, Query(description="iso (default), epoch_us or epoch_ms")]
LimitQ = Annotated[int | None, Query(description="rows per page (default api.default_limit, at most api.max_rows)")]
CursorQ = Annotated[str | None, Query(description="next_cursor of the previous page", max_length=200)]
ColumnsQ = Annotated[
    str | None, Query(description="comma-separated columns (ts and the dedup keys always)", max_length=2000)
]
InstrumentQ = Annotated[
    str,
    Query(description="instrument name (ETH-27DEC24-4000-C) or pattern with * and ? (ETH-27DEC24-*)", max_length=80),
]

GAP_LOOKBACK_US = 7 * US_PER_DAY
"""/gaps also returns gaps that started up to this long before ``start`` and are still open at it."""


def _now_us() -> int:
    return int(time.time() * US_PER_S)


def _rows_endpoint(
    ctx: Ctx,
    request: Request,
    table: Table,
    instrument: str,
    start: str,
    end: str,
    limit: int | None,
    cursor: str | None,
    columns: str | None,
    fmt: str | None,
    time_format: TimeFormat,
) -> Response:
    a = ctx.settings.api
    match = p.instrument_match(instrument)
    start_us, end_us = parse_time("start", start), parse_time("end", end)
    p.time_range(start_us, end_us, a.max_span_days)
    n = p.limit(limit, a.default_limit, a.max_rows)
    cols = p.columns(table, columns)
    out = choose(fmt, request.headers.get("accept"))
    cur = Cursor.decode(cursor) if cursor else None
    page = query.rows(ctx.stores, table, cols, start_us, end_us, match, {}, n, cur)
    nxt = page.cursor.encode() if page.cursor else None
    return respond(page.frame, _times(table, cols), out, time_format, name=table.name, next_cursor=nxt)


def _times(table: Table, cols: tuple[str, ...]) -> tuple[str, ...]:
    return time_columns(table, cols)


@router.get("/quotes", summary="Quotes (ticker rows) of an instrument or pattern over [start, end)")
def quotes(
    ctx: Ctx,
    request: Request,
    instrument: InstrumentQ,
    start: TimeQ,
    end: TimeQ,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    columns: ColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    return _rows_endpoint(ctx, request, QUOTES, instrument, start, end, limit, cursor, columns, format, time_format)


@router.get("/trades", summary="Trades of an instrument or pattern over [start, end)")
def trades(
    ctx: Ctx,
    request: Request,
    instrument: InstrumentQ,
    start: TimeQ,
    end: TimeQ,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    columns: ColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    return _rows_endpoint(ctx, request, TRADES, instrument, start, end, limit, cursor, columns, format, time_format)


@router.get("/gaps", summary="Recorded gaps overlapping [start, end)")
def gaps(
    ctx: Ctx,
    request: Request,
    start: OptTimeQ = None,
    end: OptTimeQ = None,
    instrument: Annotated[
        str | None, Query(description="instrument, pattern, or * (whole connection)", max_length=80)
    ] = None,
    kind: Annotated[str | None, Query(description="disconnect, book_seq, trade_seq, stale, downtime, rejected")] = None,
    status: Annotated[str | None, Query(description="open, resolved, backfilled, unrecoverable")] = None,
    limit: LimitQ = None,
    cursor: CursorQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    end_us = parse_time("end", end) if end else _now_us()
    start_us = parse_time("start", start) if start else end_us - GAP_LOOKBACK_US
    p.time_range(start_us, end_us, a.max_span_days)
    match = None
    if instrument == "*":
        match = p.InstrumentMatch("instrument", exact="*")
    elif instrument:
        match = p.instrument_match(instrument)
    eq: dict[str, Any] = {}
    if k := p.one_of("kind", kind, ("disconnect", "book_seq", "trade_seq", "stale", "downtime", "rejected")):
        eq["kind"] = k
    if s := p.one_of("status", status, ("open", "resolved", "backfilled", "unrecoverable")):
        eq["status"] = s
    n = p.limit(limit, a.default_limit, a.max_rows)
    out = choose(format, request.headers.get("accept"))
    cur = Cursor.decode(cursor) if cursor else None
    page = query.rows(ctx.stores, GAPS, GAPS.column_names, start_us - GAP_LOOKBACK_US, end_us, match, eq, n, cur)
    frame = page.frame.filter(pl.col("end_ts").is_null() | (pl.col("end_ts") >= start_us))
    nxt = page.cursor.encode() if page.cursor else None
    return respond(frame, ("ts", "end_ts"), out, time_format, name="gaps", next_cursor=nxt)


@router.get("/chain", summary="The option chain as of an instant: the last quote of every live option")
def chain(
    ctx: Ctx,
    request: Request,
    currency: Annotated[str, Query(description="ETH, BTC, ...", max_length=16)],
    at: TimeQ,
    lookback_s: Annotated[
        int | None, Query(description="only quotes newer than at - lookback_s (default api.chain_lookback_s)")
    ] = None,
    columns: ColumnsQ = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    cur = p.currency(currency)
    at_us = parse_time("at", at)
    lb = a.chain_lookback_s if lookback_s is None else lookback_s
    if not 1 <= lb <= a.chain_max_lookback_s:
        raise InvalidRequest(f"parameter 'lookback_s': must be between 1 and {a.chain_max_lookback_s}")
    cols = p.columns(QUOTES, columns)
    out = choose(format, request.headers.get("accept"))
    match = p.InstrumentMatch("instrument", regex=chainmod.chain_regex(cur))
    frame = query.latest(ctx.stores, QUOTES, cols, at_us - lb * US_PER_S, at_us, match, "instrument")
    live = [chainmod.live(name, at_us) for name in frame.get_column("instrument").to_list()]
    frame = frame.filter(pl.Series(live, dtype=pl.Boolean)) if frame.height else frame
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"the chain has {frame.height} rows, more than api.max_rows ({a.max_rows})")
    meta = {"currency": cur, "at": iso(at_us)}
    return respond(frame, _times(QUOTES, cols), out, time_format, name=f"chain-{cur}", meta=meta)


@router.get("/book", summary="The order book of one instrument reconstructed at an instant")
def book(
    ctx: Ctx,
    request: Request,
    instrument: Annotated[str, Query(description="instrument name (no pattern)", max_length=64)],
    at: TimeQ,
    depth: Annotated[int, Query(ge=1, le=10_000, description="levels per side, best first")] = 10,
    lookback_s: Annotated[
        int | None, Query(description="how far back to look for the snapshot (default api.book_lookback_s)")
    ] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    match = p.instrument_match(instrument)
    if match.is_pattern:
        raise InvalidRequest("parameter 'instrument': /book takes one instrument name, not a pattern")
    at_us = parse_time("at", at)
    lb = a.book_lookback_s if lookback_s is None else lookback_s
    if not 1 <= lb <= 31 * 86400:
        raise InvalidRequest("parameter 'lookback_s': must be between 1 and 2678400 (31 days)")
    out = choose(format, request.headers.get("accept"))
    name = match.exact or ""
    snap = query.last_snapshot_ts(ctx.stores, BOOK_CHANGES, name, at_us - lb * US_PER_S, at_us)
    if snap is None:
        raise NotFound(f"no book snapshot of {name} within {lb} s before {iso(at_us)}")
    page = query.rows(ctx.stores, BOOK_CHANGES, BOOK_CHANGES.column_names, snap, at_us + 1, match, {}, a.max_rows, None)
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
    levels = pl.DataFrame(
        [("bid", i + 1, px, amt) for i, (px, amt) in enumerate(b.bids)]
        + [("ask", i + 1, px, amt) for i, (px, amt) in enumerate(b.asks)],
        schema={"side": pl.String, "level": pl.Int32, "price": pl.Float64, "amount": pl.Float64},
        orient="row",
    )
    if out is not Format.JSON:
        return respond(levels, (), out, time_format, name=f"book-{name}")

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
        }
    )


@router.get("/ohlcv", summary="Trade OHLCV bars of one instrument (1m and multiples)")
def ohlcv(
    ctx: Ctx,
    request: Request,
    instrument: Annotated[str, Query(description="instrument name (no pattern)", max_length=64)],
    start: TimeQ,
    end: TimeQ,
    interval: Annotated[str, Query(description="1m, 5m, 15m, 1h, 4h, 1d, ... (multiples of 1m)", max_length=10)] = "1m",
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    match = p.instrument_match(instrument)
    if match.is_pattern:
        raise InvalidRequest("parameter 'instrument': /ohlcv takes one instrument name, not a pattern")
    minutes = p.interval_minutes(interval)
    start_us, end_us = parse_time("start", start), parse_time("end", end)
    p.time_range(start_us, end_us, a.ohlcv_max_span_days)
    out = choose(format, request.headers.get("accept"))
    iv = minutes * ohlcvmod.US_PER_MIN
    lo, hi = start_us // iv * iv, -(-end_us // iv) * iv
    bars = query.minute_bars(ctx.stores, TRADES, match.exact or "", lo, hi, minutes)
    frame = ohlcvmod.fold(bars, minutes).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"{frame.height} bars exceed api.max_rows ({a.max_rows}); use a longer interval")
    frame = frame.with_columns(pl.lit(match.exact).alias("instrument")).select(
        "ts", "instrument", *ohlcvmod.OUT_COLUMNS[1:]
    )
    return respond(frame, ("ts",), out, time_format, name=f"ohlcv-{match.exact}")


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


@router.get("/instruments", summary="Instruments and their state as of an instant")
def instruments(
    ctx: Ctx,
    request: Request,
    currency: Annotated[str | None, Query(description="base currency, e.g. ETH", max_length=16)] = None,
    kind: Annotated[str | None, Query(description="option, future, spot, future_combo, option_combo")] = None,
    expiry: Annotated[str | None, Query(description="expiration date, YYYY-MM-DD", max_length=10)] = None,
    at: OptTimeQ = None,
    active: Annotated[bool, Query(description="only instruments open and not expired at 'at'")] = False,
    lookback_days: Annotated[int, Query(ge=1, le=400, description="how far back to look for state rows")] = 31,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    at_us = parse_time("at", at) if at else _now_us()
    out = choose(format, request.headers.get("accept"))
    k = p.one_of("kind", kind, ("option", "future", "spot", "future_combo", "option_combo"))
    page = query.rows(
        ctx.stores,
        INSTRUMENTS,
        INSTRUMENTS.column_names,
        at_us - lookback_days * US_PER_DAY,
        at_us + 1,
        None,
        {},
        a.max_rows,
        None,
    )
    if page.cursor is not None:
        raise ResultTooLarge(f"more than api.max_rows ({a.max_rows}) instrument rows; lower lookback_days")
    frame = fold_instruments(page.frame)
    if currency:
        frame = frame.filter(pl.col("base_currency") == p.currency(currency))
    if k:
        frame = frame.filter(pl.col("kind") == k)
    if expiry:
        day = parse_day("expiry", expiry)
        lo = day_start_us(day)
        frame = frame.filter((pl.col("expiration") >= lo) & (pl.col("expiration") < lo + US_PER_DAY))
    if active:
        frame = frame.filter(
            (pl.col("state") == "open")
            & (pl.col("expiration").is_null() | (pl.col("expiration") > at_us))
            & (pl.col("creation").is_null() | (pl.col("creation") <= at_us))
        )
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"{frame.height} instruments exceed api.max_rows ({a.max_rows}); add filters")
    return respond(frame, ("ts", "recv_ts", "expiration", "creation"), out, time_format, name="instruments")


@router.get("/coverage", summary="Per day and instrument: rows, trade_seq completeness, gap seconds")
def coverage(
    ctx: Ctx,
    request: Request,
    start_day: Annotated[str, Query(description="first day, YYYY-MM-DD", max_length=10)],
    end_day: Annotated[str, Query(description="last day (inclusive), YYYY-MM-DD", max_length=10)],
    instrument: Annotated[str | None, Query(description="instrument or pattern", max_length=80)] = None,
    table: Annotated[str | None, Query(description="quotes, trades or book_changes (default: all three)")] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    first, last = parse_day("start_day", start_day), parse_day("end_day", end_day)
    if last < first:
        raise InvalidRequest("parameters 'start_day' and 'end_day': end_day is before start_day")
    if (last - first).days + 1 > a.max_span_days:
        raise InvalidRequest(
            f"parameters 'start_day' and 'end_day': more than {a.max_span_days} days (api.max_span_days)"
        )
    by_name = {"quotes": QUOTES, "trades": TRADES, "book_changes": BOOK_CHANGES}
    chosen = p.one_of("table", table, tuple(by_name))
    tables = [chosen] if chosen else list(by_name)
    match = p.instrument_match(instrument) if instrument else None
    out = choose(format, request.headers.get("accept"))
    now = _now_us()
    parts = [ctx.stores.warm.coverage_daily(tables, first, last, match)]
    for name in tables:
        tbl = by_name[name]
        tiers = ctx.stores.day_tiers(tbl, first, last)
        hot_days = [d for d, tier in tiers.items() if tier is Tier.HOT]
        for d in hot_days:
            lo = day_start_us(d)
            raw = ctx.stores.hot.coverage(tbl, lo, lo + US_PER_DAY, match)
            if raw.height == 0:
                continue
            g = ctx.stores.hot.rows(GAPS, GAPS.column_names, lo - GAP_LOOKBACK_US, lo + US_PER_DAY, None, {}, 100_000)
            parts[0] = parts[0].filter(~((pl.col("day") == d) & (pl.col("table_name") == name)))
            parts.append(cov.hot_day_rows(d, name, raw, g, now))
    frame = pl.concat(parts).cast(COVERAGE_SCHEMA).sort("day", "table_name", "instrument")  # type: ignore[arg-type]
    if frame.height > a.max_rows:
        raise ResultTooLarge(f"{frame.height} coverage rows exceed api.max_rows ({a.max_rows}); add filters")
    frame = frame.with_columns(pl.col("day").cast(pl.String))
    return respond(frame, (), out, time_format, name="coverage")
