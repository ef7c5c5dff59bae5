"""What the OpenAPI document says the API accepts and answers (pydantic models, patterns).

Row models are generated from ``tickarchive.tables`` (one field per column: timestamps
are an ISO string or integer epoch µs/ms depending on ``time_format``, doubles may be
null); every page model wraps them as the JSON answer does (``count``, ``next_cursor``,
``note`` when a filter matched nothing in the range, ``rows``). Other formats are
documented as their media types. Every error answer is ``Error``.

The parameter patterns here are the ones the handlers enforce (``api.params``,
``api.timefmt``), so clients and fuzzers can generate valid calls from the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from tickarchive.tables import (
    BOOK_CHANGES,
    GAPS,
    INSTRUMENTS,
    QUOTES,
    TRADES,
    ColumnType,
    Table,
)

_GLOB_PART = r"[A-Za-z0-9_*?]"
INSTRUMENT_PATTERN = (
    r"^(?:[A-Z0-9_]+(?:-[A-Za-z0-9_]+)*"
    rf"|(?:{_GLOB_PART}+-)*{_GLOB_PART}*[*?]{_GLOB_PART}*(?:-{_GLOB_PART}+)*)$"
)
"""A name (``ETH-27DEC24-4000-C``) or a pattern: dash-separated parts, at least one ``*``/``?``."""
NAME_PATTERN = r"^[A-Z0-9_]+(?:-[A-Za-z0-9_]+)*$"
_SECONDS = r"(?:9[5-9][0-9]{7}|[1-3][0-9]{9}|40[0-9]{8})"
"""Epoch seconds from 2000-02 to 2096 (what ``api.timefmt.parse_time`` accepts, give or take)."""
_DATE = r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"(?:[01][0-9]|2[0-3])(?::[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?)?"
_ZONE = r"(?:[Zz]|[+-](?:0[0-9]|1[0-4]):?[0-5][0-9])"
TIME_PATTERN = rf"^(?:{_SECONDS}(?:[0-9]{{3}}|[0-9]{{6}})?|{_DATE}(?:[T ]{_CLOCK}{_ZONE}?)?)$"
"""ISO-8601 in 2000..2099 (naive = UTC) or epoch seconds, milliseconds or microseconds."""
DAY_PATTERN = rf"^{_DATE}$"
CURRENCY_PATTERN = r"^[A-Za-z0-9_]{2,16}$"
INTERVAL_PATTERN = r"^[0-9]{1,5}[mhd]$"
COLUMNS_PATTERN = r"^[a-z_]+(?:,[a-z_]+)*$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"

PAGE_MEDIA = {
    "application/x-ndjson": {"schema": {"type": "string", "description": "one row object per line"}},
    "text/csv": {"schema": {"type": "string", "description": "header line, then one line per row"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}


class Error(BaseModel):
    """Every error answer."""

    error: str = Field(description="stable code: invalid_request, not_found, unknown_instrument, ...")
    detail: str = Field(description="what is wrong and what to do instead")
    request_id: str = Field(description="quote it when asking about this request (the server log has it)")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "no, unknown or revoked API key"},
    403: {"model": Error, "description": "the key's plan does not allow this (plan_limit)"},
    404: {"model": Error, "description": "not_found / unknown_instrument"},
    413: {"model": Error, "description": "result above api.max_rows: narrow the query"},
    422: {"model": Error, "description": "a parameter is invalid (the detail names it)"},
    429: {"model": Error, "description": "rate_limited / quota_exceeded (Retry-After)"},
    500: {"model": Error, "description": "internal error (request id in the server log)"},
    503: {"model": Error, "description": "store_unavailable / store_timeout / saturated (Retry-After)"},
}

Time = str | int
"""An ISO-8601 string (time_format=iso) or integer epoch µs / ms."""

_PY: dict[ColumnType, Any] = {
    ColumnType.TIMESTAMP: Time,
    ColumnType.SYMBOL: str,
    ColumnType.VARCHAR: str,
    ColumnType.DOUBLE: float,
    ColumnType.LONG: int,
    ColumnType.INT: int,
    ColumnType.BOOLEAN: bool,
}


def row_model(table: Table, name: str) -> type[BaseModel]:
    """One row of ``table`` (columns may be left out by ``columns=``; any may be null)."""
    fields: dict[str, Any] = {
        c.name: (_PY[c.type] | None, Field(None, description=c.doc)) for c in table.columns
    }
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    model.__doc__ = table.doc
    return model


QuoteRow = row_model(QUOTES, "QuoteRow")
TradeRow = row_model(TRADES, "TradeRow")
GapRow = row_model(GAPS, "GapRow")
InstrumentRow = row_model(INSTRUMENTS, "InstrumentRow")
BookChangeRow = row_model(BOOK_CHANGES, "BookChangeRow")


def page_model(row: type[BaseModel], name: str, **extra: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "count": (int, Field(description="rows in this page")),
        "next_cursor": (str | None, Field(None, description="pass as cursor for the next page; null = last page")),
        "note": (str | None, Field(None, description="why a page is empty, e.g. no data in the range")),
        "rows": (list[row], Field(description="the rows, in dedup-key order")),  # type: ignore[valid-type]
        **extra,
    }
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return model


QuotesPage = page_model(QuoteRow, "QuotesPage")
TradesPage = page_model(TradeRow, "TradesPage")
GapsPage = page_model(GapRow, "GapsPage")
ChainPage = page_model(
    QuoteRow,
    "ChainPage",
    currency=(str, Field(description="the currency asked for")),
    at=(str, Field(description="the instant, ISO-8601")),
)
InstrumentsPage = page_model(InstrumentRow, "InstrumentsPage")


class Bar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ts: Time
    instrument: str
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    buy_volume: float | None
    sell_volume: float | None
    trade_count: int | None
    vwap: float | None


OhlcvPage = page_model(Bar, "OhlcvPage")


class CoverageRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: str
    instrument: str
    table_name: str
    rows: int
    trade_seq_min: int | None
    trade_seq_max: int | None
    trade_seq_missing: int | None
    gap_seconds: float


CoveragePage = page_model(CoverageRow, "CoveragePage")


class Book(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: str
    at: Time
    snapshot_ts: Time
    ts: Time
    change_id: int
    changes_applied: int
    sequence_breaks: int
    bids: list[list[float]] = Field(description="[price, amount], best first")
    asks: list[list[float]] = Field(description="[price, amount], best first")


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connection: str
    heartbeat: str
    heartbeat_age_s: float
    connected: bool
    subscribed_channels: int
    last_frame: str | None


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(description="ok or unhealthy")
    reasons: list[str]
    questdb: str | None = None
    postgres: str | None = None
    connections: list[Connection] | None = None
    journal_backlog_bytes: int | None = None
    last_tick_age_s: dict[str, float | None] | None = None
    stream: dict[str, Any] | None = None


def page_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 200 of a row endpoint: ``model`` as JSON, the other formats as media types."""
    return {200: {"model": model, "content": dict(PAGE_MEDIA)}}
