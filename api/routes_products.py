"""The product endpoints (docs/api.md, "Products"): ``/chain/snapshots``, ``/surface``,
``/book/snapshots``, ``/options_chain`` (Tardis CSV) and ``/condition``.

The products themselves are computed by ``tickarchive.products`` (pure); here they read
stored ticks through ``StoresSource``, the ``TickSource`` over the tier router: each day
of a range comes from the one tier that holds it (QuestDB, the warm store or the Parquet
archive), exactly as ``/quotes`` reads it. Results larger than ``api.max_rows`` are a
413 (use ``tickarchive export`` for long ranges: it writes files window by window).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from tickarchive.api import params as p
from tickarchive.api import query
from tickarchive.api.context import CallerDep, Ctx, known_parameters_only
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import InvalidRequest, PlanLimit, ResultTooLarge
from tickarchive.api.output import Format, TimeFormat, choose, respond
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.routes_common import Call, FormatQ, NameQ, OptTimeQ, TimeFormatQ, columns_param
from tickarchive.api.routes_common import TimeQ as RequiredTimeQ
from tickarchive.api.schemas import CURRENCY_PATTERN
from tickarchive.api.stores import Stores
from tickarchive.api.tiers import Tier, days
from tickarchive.api.timefmt import US_PER_DAY, US_PER_S, day_start_us, iso, parse_time
from tickarchive.products import book as bookmod
from tickarchive.products import build, chain, condition, surface, tardis
from tickarchive.products.chain import Basis
from tickarchive.products.errors import InvalidProductRequest
from tickarchive.products.instruments import chain_regex
from tickarchive.products.timegrid import count_instants, parse_interval
from tickarchive.tables import BOOK_CHANGES, GAPS, QUOTES, TRADES

router = APIRouter(dependencies=[Depends(known_parameters_only)])

GAP_LOOKBACK_US = 7 * US_PER_DAY
"""Gaps that started up to this long before a range and are still open in it are read too."""
PAGE_ROWS = 500_000

TimeQ = OptTimeQ
CurrencyQ = Annotated[
    str, Query(description="ETH, BTC, ...", min_length=2, max_length=16, pattern=CURRENCY_PATTERN, examples=["ETH"])
]
PRODUCT_INTERVAL_PATTERN = r"^[0-9]{1,6}(?:ms|s|m|h|d)$"
"""``<n>ms|s|m|h|d`` (``tickarchive.products.timegrid``: at least 1 ms, at most 31 days)."""
LookbackQ = Annotated[int | None, Query(ge=1, le=31 * 86400, description="seconds (at most 31 days)")]
BasisQ = Annotated[
    Basis, Query(description="exchange (quote ts <= at, default) or receive (recv_ts <= at: what was known live)")
]
MaxAgeQ = Annotated[
    int | None,
    Query(ge=1, le=31 * 86400,
          description="seconds: leave out options whose last quote is older than this (default api.chain_lookback_s)"),
]


class StoresSource:
    """``tickarchive.products.source.TickSource`` over every tier of ``stores``."""

    def __init__(self, stores: Stores, page_rows: int = PAGE_ROWS) -> None:
        self.stores = stores
        self.page_rows = page_rows

    def _all(
        self, table: Any, columns: Sequence[str], lo_us: int, hi_us: int, match: InstrumentMatch | None
    ) -> pl.DataFrame:
        parts = []
        cursor: Cursor | None = None
        while True:
            page = query.rows(self.stores, table, columns, lo_us, hi_us, match, {}, self.page_rows, cursor)
            if page.frame.height:
                parts.append(page.frame)
            if page.cursor is None:
                break
            cursor = page.cursor
        if not parts:
            from tickarchive.api.frames import schema

            return pl.DataFrame(schema=schema(table, columns))
        return pl.concat(parts) if len(parts) > 1 else parts[0]

    def quotes(self, currency: str, columns: Sequence[str], lo_us: int, hi_us: int) -> pl.DataFrame:
        cols = tuple(c for c in QUOTES.column_names if c in set(columns))
        match = InstrumentMatch("instrument", regex=chain_regex(currency))
        return self._all(QUOTES, cols, lo_us, hi_us, match)

    def book_changes(self, instrument: str, lo_us: int, hi_us: int) -> pl.DataFrame:
        match = InstrumentMatch("instrument", exact=instrument)
        return self._all(BOOK_CHANGES, BOOK_CHANGES.column_names, lo_us, hi_us, match)

    def last_book_snapshot(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        return query.last_snapshot_ts(self.stores, BOOK_CHANGES, instrument, lo_us, at_us)

    def gaps(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        g = self._all(GAPS, GAPS.column_names, lo_us - GAP_LOOKBACK_US, hi_us, None)
        return g.filter(pl.col("end_ts").is_null() | (pl.col("end_ts") > lo_us))


def _collect(frames: Iterator[pl.DataFrame], max_rows: int, what: str, schema: dict[str, Any]) -> pl.DataFrame:
    parts: list[pl.DataFrame] = []
    n = 0
    try:
        for f in frames:
            n += f.height
            if n > max_rows:
                raise ResultTooLarge(
                    f"{what} has more than api.max_rows ({max_rows}) rows; narrow the range, lengthen the interval, "
                    "or use `tickarchive export`"
                )
            parts.append(f)
    except InvalidProductRequest as exc:
        raise InvalidRequest(str(exc)) from None
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _range(start: str | None, end: str | None, at: str | None, max_span_days: int) -> tuple[int, int, bool]:
    """(start, end, single instant?) from ``start``+``end`` or ``at``."""
    if at is not None:
        if start is not None or end is not None:
            raise InvalidRequest("parameters 'at', 'start', 'end': give either at, or start and end")
        at_us = parse_time("at", at)
        return at_us, at_us + 1, True
    if start is None or end is None:
        raise InvalidRequest("parameters 'start' and 'end' (or 'at') are required")
    lo, hi = parse_time("start", start), parse_time("end", end)
    p.time_range(lo, hi, max_span_days, "api.products_max_span_days")
    return lo, hi, False


def _admit(call: Call, lo_us: int, hi_us: int, fmt: str) -> int:
    """The caller's plan on a product over [lo, hi): history depth, format, rows left today
    (429 once used up; the answer is charged in full afterwards), and ``hi`` cut to what a
    delayed plan may see now (403 when nothing of the range is visible yet)."""
    c = call.caller
    c.check_history(lo_us, call.now_us)
    c.check_format(fmt)
    c.row_budget(1, call.now_us)
    horizon = c.horizon_us(call.now_us)
    if lo_us >= horizon:
        delay = c.plan.live_delay_s if c.plan is not None else 0
        raise PlanLimit(f"plan {c.plan_name!r} delays data by {delay} s: nothing of the range is visible yet")
    return min(hi_us, horizon)


def _interval(text: str, name: str = "interval", min_us: int = 1000) -> int:
    try:
        return parse_interval(text, name, min_us)
    except InvalidProductRequest as exc:
        raise InvalidRequest(str(exc)) from None


def _chain_spec(
    call: Call, fmt: str, currency: str, start: str | None, end: str | None, at: str | None, interval: str,
    max_age_s: int | None, basis: Basis, values: tuple[str, ...],
) -> build.ChainSpec:
    a = call.ctx.settings.api
    cur = p.currency(currency)
    lo, hi, single = _range(start, end, at, a.products_max_span_days)
    hi = _admit(call, lo, hi, fmt)
    step = 1 if single else _interval(interval, min_us=US_PER_S)
    if count_instants(lo, hi, step) > a.max_rows:
        raise ResultTooLarge(f"more than api.max_rows ({a.max_rows}) instants; lengthen the interval")
    age = a.chain_lookback_s if max_age_s is None else max_age_s
    if not 1 <= age <= a.chain_max_lookback_s:
        raise InvalidRequest(f"parameter 'max_age_s': must be between 1 and {a.chain_max_lookback_s}")
    try:
        return build.ChainSpec(cur, lo, hi, step, age * US_PER_S, basis, values)
    except InvalidProductRequest as exc:
        raise InvalidRequest(str(exc)) from None


def _meta(spec: build.ChainSpec, interval: str) -> dict[str, Any]:
    return {
        "currency": spec.currency,
        "start": iso(spec.start_us),
        "end": iso(spec.end_us),
        "interval": interval if spec.interval_us > 1 else None,
        "basis": spec.basis.value,
        "max_age_s": spec.max_age_us // US_PER_S,
    }


@router.get("/chain/snapshots", summary="The option chain at fixed instants: last quote per option as of each")
def chain_snapshots(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    currency: CurrencyQ,
    start: TimeQ = None,
    end: TimeQ = None,
    at: TimeQ = None,
    interval: Annotated[
        str, Query(description="1s, 1m, 1h, 1d (end of day), ...", max_length=12, pattern=PRODUCT_INTERVAL_PATTERN)
    ] = "1m",
    max_age_s: MaxAgeQ = None,
    basis: BasisQ = Basis.EXCHANGE,
    columns: Annotated[str | None, columns_param(QUOTES)] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    values = chain.VALUE_COLUMNS if not columns else tuple(dict.fromkeys(c.strip() for c in columns.split(",")
                                                                         if c.strip()))
    call = Call.of(ctx, caller, request)
    out = choose(format, request.headers.get("accept"))
    spec = _chain_spec(call, out.value, currency, start, end, at, interval, max_age_s, basis, values)
    frame = _collect(
        build.chain_snapshots(StoresSource(ctx.stores), spec), ctx.settings.api.max_rows, "the chain",
        chain.snapshot_schema(spec.values),
    )
    call.charge(frame)
    return respond(frame, chain.TIME_COLUMNS, out, time_format, name=f"chain-{spec.currency}",
                   meta=_meta(spec, interval))


@router.get("/surface", summary="Implied-volatility surface per expiry at fixed instants, from the exchange's IVs")
def surface_route(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    currency: CurrencyQ,
    start: TimeQ = None,
    end: TimeQ = None,
    at: TimeQ = None,
    interval: Annotated[
        str, Query(description="1m, 1h, 1d, ...", max_length=12, pattern=PRODUCT_INTERVAL_PATTERN)
    ] = "1h",
    level: Annotated[
        str,
        Query(description="expiries (ATM, 25-delta RR/BF, term structure) or points", pattern="^(?:expiries|points)$"),
    ] = "expiries",
    max_age_s: MaxAgeQ = None,
    basis: BasisQ = Basis.EXCHANGE,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    lvl = p.one_of("level", level, ("expiries", "points"))
    assert lvl is not None
    call = Call.of(ctx, caller, request)
    out = choose(format, request.headers.get("accept"))
    spec = _chain_spec(call, out.value, currency, start, end, at, interval, max_age_s, basis, surface.SNAPSHOT_VALUES)
    schema = surface.EXPIRIES_SCHEMA if lvl == "expiries" else surface.POINTS_SCHEMA
    frame = _collect(build.surfaces(StoresSource(ctx.stores), spec, lvl), ctx.settings.api.max_rows, "the surface",
                     schema)
    call.charge(frame)
    meta = {**_meta(spec, interval), "level": lvl}
    return respond(frame, surface.TIME_COLUMNS, out, time_format, name=f"surface-{spec.currency}-{lvl}", meta=meta)


@router.get("/book/snapshots", summary="Top-N order book of one instrument every X ms, from snapshots + changes")
def book_snapshots(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    instrument: NameQ,
    start: TimeQ = None,
    end: TimeQ = None,
    interval: Annotated[
        str, Query(description="100ms, 1s, 1m, ...", max_length=12, pattern=PRODUCT_INTERVAL_PATTERN)
    ] = "100ms",
    depth: Annotated[int, Query(ge=1, le=1000, description="levels per side, best first")] = 25,
    only_changed: Annotated[bool, Query(description="only instants whose top N changed (Tardis's rows)")] = False,
    lookback_s: Annotated[
        int | None,
        Query(ge=1, le=31 * 86400,
              description="seconds before start to look for a snapshot (default api.book_lookback_s)"),
    ] = None,
    format: Annotated[
        str | None,
        Query(description="json (default), ndjson, csv, parquet, or tardis (book_snapshot_N CSV)",
              pattern="^(?:json|ndjson|csv|parquet|tardis)$"),
    ] = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    match = p.instrument_match(instrument)
    if match.is_pattern or match.exact is None:
        raise InvalidRequest("parameter 'instrument': /book/snapshots takes one instrument name, not a pattern")
    lo, hi, _ = _range(start, end, None, a.products_max_span_days)
    step = _interval(interval)
    if count_instants(lo, hi, step) > a.max_rows:
        raise ResultTooLarge(f"more than api.max_rows ({a.max_rows}) instants; lengthen the interval")
    lb = a.book_lookback_s if lookback_s is None else lookback_s
    if not 1 <= lb <= 31 * 86400:
        raise InvalidRequest("parameter 'lookback_s': must be between 1 and 2678400 (31 days)")
    as_tardis = format == "tardis"
    out = Format.CSV if as_tardis else choose(format, request.headers.get("accept"))
    call = Call.of(ctx, caller, request)
    hi = _admit(call, lo, hi, out.value)
    try:
        spec = build.BookSpec(match.exact, lo, hi, step, depth, lb * US_PER_S, only_changed)
    except InvalidProductRequest as exc:
        raise InvalidRequest(str(exc)) from None
    frame = _collect(build.book_snapshots(StoresSource(ctx.stores), spec), a.max_rows, "the book",
                     build.book_schema(depth))
    call.charge(frame)
    if as_tardis:
        body = tardis.csv_bytes(tardis.book_snapshots(frame, depth))
        name = f"deribit_book_snapshot_{depth}_{interval}_{match.exact}.csv"
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"X-Row-Count": str(frame.height), "Content-Disposition": f'inline; filename="{name}"'})
    meta = {"instrument": match.exact, "start": iso(lo), "end": iso(hi), "interval": interval, "depth": depth}
    return respond(frame, bookmod.TIME_COLUMNS, out, time_format, name=f"book-{match.exact}", meta=meta)


@router.get("/options_chain", summary="Tardis-compatible options_chain CSV of every quote of a currency's options")
def options_chain(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    currency: CurrencyQ,
    start: RequiredTimeQ,
    end: RequiredTimeQ,
) -> Response:
    a = ctx.settings.api
    cur = p.currency(currency)
    lo, hi = parse_time("start", start), parse_time("end", end)
    p.time_range(lo, hi, 1)
    call = Call.of(ctx, caller, request)
    hi = _admit(call, lo, hi, Format.CSV.value)
    empty = dict.fromkeys(tardis.OPTIONS_CHAIN_COLUMNS, pl.String())
    frame = _collect(build.options_chain(StoresSource(ctx.stores), cur, lo, hi), a.max_rows, "the options chain", empty)
    call.charge(frame)
    body = tardis.csv_bytes(frame.sort("local_timestamp", "symbol", "timestamp") if frame.height else frame)
    name = f"deribit_options_chain_{iso(lo)[:10]}_OPTIONS.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"X-Row-Count": str(frame.height), "Content-Disposition": f'inline; filename="{name}"'})


def _day_rows(
    stores: Stores, table: Any, tiers: dict[dt.date, Tier], first: dt.date, last: dt.date, max_rows: int
) -> pl.DataFrame:
    """``day``, ``instrument``, ``rows`` of ``table``: rolled-over days from the warm
    ``coverage_daily`` (written by the rollover), days still in QuestDB counted there; each
    read bounded by ``max_rows`` (``ResultTooLarge`` past it)."""

    def bounded(frame: pl.DataFrame) -> pl.DataFrame:
        if frame.height > max_rows:
            raise ResultTooLarge(f"more than api.max_rows ({max_rows}) day x instrument counts; shorten the range")
        return frame

    warm = bounded(stores.warm.coverage_daily([table.name], first, last, None, max_rows + 1))
    warm = warm.select("day", "instrument", "rows")
    parts = [warm.filter(~pl.col("day").is_in([d for d, t in tiers.items() if t is Tier.HOT]))]
    for d, tier in tiers.items():
        if tier is not Tier.HOT:
            continue
        lo = day_start_us(d)
        raw = bounded(stores.hot.coverage(table, lo, lo + US_PER_DAY, None, max_rows + 1))
        if raw.height:
            parts.append(raw.select(pl.lit(d).alias("day"), pl.col("instrument"), pl.col("rows").cast(pl.Int64)))
    return pl.concat(parts, how="vertical_relaxed") if parts else warm


@router.get("/condition", summary="Per day and table: available, degraded (gaps), missing or pending")
def condition_route(
    ctx: Ctx,
    caller: CallerDep,
    request: Request,
    start: RequiredTimeQ,
    end: RequiredTimeQ,
    table: Annotated[
        str | None,
        Query(description="quotes, trades or book_changes (default: all three)",
              pattern="^(?:quotes|trades|book_changes)$"),
    ] = None,
    format: FormatQ = None,
    time_format: TimeFormatQ = TimeFormat.ISO,
) -> Response:
    a = ctx.settings.api
    lo, hi = parse_time("start", start), parse_time("end", end)
    p.time_range(lo, hi, a.products_max_span_days, "api.products_max_span_days")
    by_name = {"quotes": QUOTES, "trades": TRADES, "book_changes": BOOK_CHANGES}
    chosen = p.one_of("table", table, tuple(by_name))
    tables = [chosen] if chosen else list(by_name)
    out = choose(format, request.headers.get("accept"))
    caller.check_format(out.value)
    ds = days(lo, hi)
    first, last = ds[0], ds[-1]
    now = int(time.time() * US_PER_S)
    gaps = StoresSource(ctx.stores).gaps(day_start_us(first), day_start_us(last) + US_PER_DAY)
    parts = []
    for name in tables:
        tbl = by_name[name]
        tiers = ctx.stores.day_tiers(tbl, first, last)
        sealed = {d for d, t in tiers.items() if t is not Tier.HOT}
        rows = _day_rows(ctx.stores, tbl, tiers, first, last, a.max_rows)
        parts.append(condition.classify(name, ds, sealed, rows, gaps, now))
    frame = pl.concat(parts).sort("day", "table_name").with_columns(pl.col("day").cast(pl.String))
    return respond(frame, (), out, time_format, name="condition")
