"""The report's data access: one UTC day of quotes, trades and gaps, from QuestDB (hot) or
the warm store (TimescaleDB/PostgreSQL) when the rollover ledger says the day is there.

Both tiers share table and column names (``tickarchive.tables``), so one SQL text serves
both; rows are streamed (libpq single-row mode), never loaded whole. Timestamps become
integer microseconds since the epoch (QuestDB returns naive UTC, PostgreSQL aware).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tickarchive.ops.quality.errors import QualitySourceError
from tickarchive.ops.quality.model import (
    US_PER_DAY,
    GapRow,
    Lifetime,
    QuoteRow,
    TradeRow,
    WindowTrade,
    day_start_us,
    iso_us,
)
from tickarchive.settings import Settings

Tier = Literal["hot", "warm"]

EXPIRED_STATES = frozenset({"settlement", "delivered", "closed", "archivized", "inactive"})
"""Instrument states after expiry (``instruments.state``): no quote is due any more."""

WARM_STATUSES = frozenset({"verified", "dropped"})
"""rollover_ledger statuses meaning the warm store holds the day's rows, verified."""
REPORT_TABLES = ("quotes", "trades")
"""Tables whose ledger rows must all be in ``WARM_STATUSES`` for the day to be read warm."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _opt_us(value: dt.datetime | None) -> int | None:
    return None if value is None else to_us(value)


@dataclass(frozen=True, slots=True)
class DaySource:
    """Reads one tier over the PostgreSQL wire protocol."""

    tier: Tier
    dsn: str
    label: str
    prepare_threshold: int | None = None
    """None disables server-side prepared statements (QuestDB, PGlite)."""

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self.dsn, autocommit=True, prepare_threshold=self.prepare_threshold)
        except psycopg.Error as exc:
            raise QualitySourceError(f"{self.label}: cannot connect: {exc}".strip()) from None

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        with self._connect() as conn:
            try:
                yield from conn.cursor().stream(sql)
            except psycopg.Error as exc:
                raise QualitySourceError(f"{self.label}: query failed: {exc}".strip()) from None

    @staticmethod
    def _window(day: dt.date) -> str:
        start = day_start_us(day)
        return DaySource._between(start, start + US_PER_DAY)

    @staticmethod
    def _between(start_us: int, end_us: int) -> str:
        return f"ts >= '{iso_us(start_us)}' AND ts < '{iso_us(end_us)}'"

    def quotes(self, day: dt.date) -> Iterator[QuoteRow]:
        """The day's quotes, newest exchange ts first (a backward scan, no sort of the day)."""
        sql = (
            "SELECT ts, recv_ts, instrument, bid_price, bid_amount, ask_price, ask_amount, volume_24h "
            f"FROM quotes WHERE {self._window(day)} ORDER BY ts DESC"
        )
        for r in self._stream(sql):
            yield QuoteRow(to_us(r[0]), to_us(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])

    def trades(self, day: dt.date) -> Iterator[TradeRow]:
        """The day's trades, newest exchange ts first."""
        sql = (
            "SELECT ts, recv_ts, instrument, trade_id, trade_seq, price, amount, source "
            f"FROM trades WHERE {self._window(day)} ORDER BY ts DESC"
        )
        for r in self._stream(sql):
            yield TradeRow(
                to_us(r[0]), to_us(r[1]), r[2], r[3], int(r[4]), float(r[5]), float(r[6]), str(r[7] or "ws")
            )

    def window_trades(self, day: dt.date) -> Iterator[WindowTrade]:
        """The trades of the 24 h before the day (the exchange's 24 h volume window of a quote
        late in the day reaches back into them)."""
        start = day_start_us(day)
        sql = f"SELECT ts, instrument, trade_id, amount FROM trades WHERE {self._between(start - US_PER_DAY, start)}"
        for r in self._stream(sql):
            yield WindowTrade(to_us(r[0]), r[1], r[2], float(r[3]))

    def heartbeat_hours(self, day: dt.date) -> set[int]:
        """UTC hours of the day with at least one collector heartbeat (the collector ran)."""
        if self.tier == "hot":
            sql = f"SELECT hour(ts), count() FROM collector_heartbeats WHERE {self._window(day)}"
        else:
            sql = (
                "SELECT CAST(extract(hour FROM ts AT TIME ZONE 'UTC') AS int), count(*) FROM collector_heartbeats "
                f"WHERE {self._window(day)} GROUP BY 1"
            )
        return {int(r[0]) for r in self._stream(sql) if r[1]}

    def lifetimes(self, day: dt.date) -> dict[str, Lifetime]:
        """instrument -> (listed at, expires at) for instruments listed or expiring within the
        day, from the day's ``instruments`` rows: a discovery row carries ``creation`` and
        ``expiration``; a state notification does not, its time says it (``open``: listed,
        ``settlement``/``delivered``/...: expired)."""
        start = day_start_us(day)
        end = start + US_PER_DAY
        sql = (
            "SELECT instrument, state, min(ts), min(creation), max(expiration) FROM instruments "
            f"WHERE {self._window(day)} GROUP BY instrument, state"
        )
        seen: dict[str, tuple[int | None, int | None]] = {}
        for r in self._stream(sql):
            name, state, first_us = str(r[0]), str(r[1]), to_us(r[2])
            created, expires = _opt_us(r[3]), _opt_us(r[4])
            if created is None and state == "open":
                created = first_us
            if expires is None and state in EXPIRED_STATES:
                expires = first_us
            c0, e0 = seen.get(name, (None, None))
            seen[name] = (
                created if c0 is None else c0 if created is None else min(c0, created),
                expires if e0 is None else e0 if expires is None else min(e0, expires),
            )
        out: dict[str, Lifetime] = {}
        for name, (created, expires) in seen.items():
            created = created if created is not None and start <= created < end else None
            if expires is not None and expires < start:
                expires = start  # expired before the day
            expires = expires if expires is not None and expires < end else None
            if created is not None or expires is not None:
                out[name] = (created, expires)
        return out

    def first_collected_us(self, since_us: int) -> int | None:
        """The earliest heartbeat, quote or trade at or after ``since_us`` (when collection
        began, as far as the store can tell), or None."""
        found = []
        for table in ("collector_heartbeats", "quotes", "trades"):
            sql = f"SELECT ts FROM {table} WHERE ts >= '{iso_us(since_us)}' ORDER BY ts LIMIT 1"
            found += [to_us(r[0]) for r in self._stream(sql)]
        return min(found) if found else None

    def gaps(self, day: dt.date) -> list[GapRow]:
        """Gaps that overlap the day (those still open included)."""
        start = day_start_us(day)
        sql = (
            "SELECT ts, end_ts, instrument, kind, cause, connection, status FROM gaps "
            f"WHERE ts < '{iso_us(start + US_PER_DAY)}' AND (end_ts IS NULL OR end_ts >= '{iso_us(start)}') "
            "ORDER BY ts"
        )
        return [GapRow(to_us(r[0]), _opt_us(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in self._stream(sql)]


def hot_source(settings: Settings) -> DaySource:
    from tickarchive.store.migrate import questdb_dsn

    q = settings.questdb
    return DaySource("hot", questdb_dsn(q.host, q.pg_port, q.user, q.password), f"hot (QuestDB {q.host}:{q.pg_port})")


def warm_source(settings: Settings) -> DaySource:
    from tickarchive.store.dialect import warm_dsns

    dsn = warm_dsns(settings.postgres).reader
    info = conninfo_to_dict(dsn)
    return DaySource("warm", dsn, f"warm ({info.get('host', '?')}:{info.get('port', '?')}/{info.get('dbname', '?')})")


def ledger_statuses(warm: DaySource, day: dt.date) -> dict[str, str]:
    """table -> rollover_ledger status for ``day``."""
    with warm._connect() as conn:
        try:
            rows = conn.execute(
                "SELECT table_name, status FROM rollover_ledger WHERE day = %s", (day,)
            ).fetchall()
        except psycopg.Error as exc:
            raise QualitySourceError(f"{warm.label}: cannot read rollover_ledger: {exc}".strip()) from None
    return {str(t): str(s) for t, s in rows}


def day_is_warm(statuses: dict[str, str]) -> bool:
    return all(statuses.get(t) in WARM_STATUSES for t in REPORT_TABLES)


def archived_only(warm: DaySource, day: dt.date) -> bool:
    """The ledger says the warm store received the day's quotes, and it holds none of them
    any more: warm retention dropped the day's month after archiving it (cold)."""
    start = day_start_us(day)
    with warm._connect() as conn:
        try:
            loaded = conn.execute(
                "SELECT rows_warm FROM rollover_ledger WHERE day = %s AND table_name = 'quotes'", (day,)
            ).fetchall()
            held = conn.execute(
                f"SELECT 1 FROM quotes WHERE {DaySource._between(start, start + US_PER_DAY)} LIMIT 1"
            ).fetchall()
        except psycopg.Error as exc:
            raise QualitySourceError(f"{warm.label}: cannot read the day: {exc}".strip()) from None
    return bool(loaded and (loaded[0][0] or 0) > 0 and not held)


def choose_source(settings: Settings, day: dt.date, prefer: Literal["auto", "hot", "warm"]) -> DaySource:
    """``auto``: the warm store if its rollover ledger has the day verified, else QuestDB. A
    day only the archive holds is refused with what to do (the report reads hot and warm)."""
    if prefer == "hot":
        return hot_source(settings)
    warm = warm_source(settings)
    if prefer == "warm" or day_is_warm(ledger_statuses(warm, day)):
        if archived_only(warm, day):
            month = f"{day:%Y-%m}"
            raise QualitySourceError(
                f"{day} is only in the archive (cold): its month was dropped from the warm store after it was "
                f"archived; load it back with `tickarchive archive restore --month {month}`, then report it"
            )
        return warm
    return hot_source(settings)
