"""Trade backfill: re-fetch from the venue's trade history the trades a gap may have lost.

The venue's history client (``Venue.history_trades``) returns every trade of a window
(one instrument for a ``trade_seq`` gap; every instrument of the configured currencies
and kinds for ``disconnect``, ``stale``, ``downtime`` windows). Only trades **not already
stored** are inserted (``source = backfill``): re-sending a stored trade would make the
DEDUP upsert flip its ``source`` from ``ws`` to ``backfill``. "Stored" is read from
QuestDB (``/exec``) after the writer acknowledged the journal up to the gap's end and
QuestDB applied its WAL, so the set is exact. Quotes and book changes have no history:
their gaps stay ``unrecoverable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

import httpx

from tickarchive.domain import ALL_INSTRUMENTS, Gap, GapKind, GapStatus, TradeTick
from tickarchive.errors import VenueUnavailable
from tickarchive.ingest.errors import BackfillError
from tickarchive.venue import TradeWindow, Venue

log = logging.getLogger(__name__)

MARGIN_US: Final = 2_000_000
"""Widening of a connection-level window on both sides: trades in flight around the
last/first frame are re-checked (those already stored are skipped)."""


def window_of_gap(gap: Gap, first_seq: int | None = None, last_seq: int | None = None) -> TradeWindow:
    """The trades a gap may have lost: a ``trade_seq`` gap's instrument and bounds; a
    connection-level window widened by ``MARGIN_US`` on both sides."""
    end = gap.end_us if gap.end_us is not None else time.time_ns() // 1000
    if gap.kind is GapKind.TRADE_SEQ and gap.instrument != ALL_INSTRUMENTS:
        return TradeWindow(gap.instrument, gap.start_us, end, first_seq, last_seq)
    return TradeWindow(gap.instrument, gap.start_us - MARGIN_US, end + MARGIN_US, first_seq, last_seq)


class Backfiller:
    """The venue's history + QuestDB's "already stored" check. One per collector."""

    def __init__(
        self,
        venue: Venue,
        questdb_http_url: str,
        timeout_s: float = 30.0,
        metrics: Any | None = None,
    ) -> None:
        self.venue = venue
        self.questdb_url = questdb_http_url.rstrip("/")
        self.metrics = metrics
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def history(self, window: TradeWindow) -> list[TradeTick]:
        """Every trade of the window from the venue's history (legs expanded), by trade id."""
        try:
            return await self.venue.history_trades(self._client, window)
        except VenueUnavailable as exc:
            raise BackfillError(str(exc)) from exc

    # ---- QuestDB ----------------------------------------------------------------------

    async def _exec(self, sql: str) -> list[list[Any]]:
        try:
            r = await self._client.get(f"{self.questdb_url}/exec", params={"query": sql})
        except httpx.HTTPError as exc:
            raise BackfillError(f"QuestDB {self.questdb_url} unreachable: {exc}") from exc
        if r.status_code != 200:
            raise BackfillError(f"QuestDB query failed (HTTP {r.status_code}): {r.text[:300]}")
        data = r.json()
        rows = data.get("dataset", [])
        return rows if isinstance(rows, list) else []

    async def wait_wal(self, table: str = "trades", timeout_s: float = 15.0) -> None:
        """Wait until QuestDB applied every committed transaction of ``table``."""
        deadline = time.monotonic() + timeout_s
        while True:
            sql = f"SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = '{table}'"
            rows = await self._exec(sql)
            if not rows:
                return
            writer_txn, seq_txn, suspended = rows[0]
            if suspended:
                raise BackfillError(f"QuestDB WAL table {table} is suspended")
            if writer_txn >= seq_txn:
                return
            if time.monotonic() > deadline:
                raise BackfillError(f"QuestDB did not apply the WAL of {table} within {timeout_s:g} s")
            await asyncio.sleep(0.05)

    async def stored(self, window: TradeWindow) -> set[tuple[str, str]]:
        """(instrument, trade_id) of the trades QuestDB holds in the window."""
        where = f"ts BETWEEN cast({window.start_us} AS timestamp) AND cast({window.end_us} AS timestamp)"
        if window.instrument != ALL_INSTRUMENTS:
            inst = window.instrument.replace("'", "''")
            where += f" AND instrument = '{inst}'"
        rows = await self._exec(f"SELECT instrument, trade_id FROM trades WHERE {where}")
        return {(str(r[0]), str(r[1])) for r in rows}

    async def missing(self, window: TradeWindow) -> list[TradeTick]:
        """Trades of the window that QuestDB does not hold (what a backfill inserts)."""
        hist = await self.history(window)
        if not hist:
            return []
        have = await self.stored(window)
        out = [t for t in hist if (t.instrument, t.trade_id) not in have]
        out.sort(key=lambda t: (t.ts_us, t.instrument, t.trade_seq))
        return out


def backfilled(gap: Gap, inserted: int) -> Gap:
    """The gap row after a successful backfill."""
    if gap.kind in (GapKind.DISCONNECT, GapKind.STALE, GapKind.DOWNTIME):
        cause = f"{gap.cause}; {inserted} trades backfilled, quotes and book changes unrecoverable"
    else:
        cause = f"{gap.cause}; {inserted} trades backfilled"
    return Gap(gap.kind, gap.instrument, gap.start_us, gap.end_us, cause, gap.connection, GapStatus.BACKFILLED)


# ---- by hand (``tickarchive backfill``) ----------------------------------------------


def parse_time_us(text: str) -> int:
    """``1732430000000000`` (µs) or an ISO time (``2026-11-24T06:00:00Z``) → µs."""
    from datetime import UTC, datetime

    t = text.strip()
    if t.lstrip("-").isascii() and t.lstrip("-").isdigit():  # str.isdigit() alone accepts '²'
        return int(t)
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise BackfillError(f"not a time: {text!r} (use µs since the epoch or ISO 8601)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(d.timestamp()) * 1_000_000 + d.microsecond


_BACKFILLABLE = ("disconnect", "stale", "trade_seq", "downtime")


async def stored_gaps(bf: Backfiller, open_only: bool, start_us: int | None) -> list[Gap]:
    """Gaps from QuestDB: closed and still ``open`` (trade-recoverable kinds), or the ones
    starting at ``start_us``."""
    kinds = ",".join(f"'{k}'" for k in _BACKFILLABLE)
    where = f"kind IN ({kinds}) AND end_ts IS NOT NULL"
    if open_only:
        where += " AND status = 'open'"
    if start_us is not None:
        where += f" AND ts = cast({start_us} AS timestamp)"
    rows = await bf._exec(f"SELECT ts, end_ts, instrument, kind, cause, connection, status FROM gaps WHERE {where}")
    out = []
    for ts, end_ts, inst, kind, cause, conn, status in rows:
        out.append(
            Gap(GapKind(kind), inst, parse_time_us(ts), parse_time_us(end_ts), cause, conn, GapStatus(status))
        )
    return out


async def run_backfill(
    open_gaps: bool,
    gap_ts: str | None,
    instrument: str | None,
    start: str | None,
    end: str | None,
    history_url: str | None,
) -> int:
    """The ``tickarchive backfill`` command: returns the trades inserted."""
    import warnings

    from tickarchive.settings import load_settings
    from tickarchive.store.ilp import IlpEncoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from questdb.ingress import IngressError, Sender

    from tickarchive import venues

    s = load_settings()
    if history_url is not None:
        s = s.model_copy(update={"deribit": s.deribit.model_copy(update={"history_url": history_url})})
    qdb = f"http://{s.questdb.host}:{s.questdb.http_port}"
    bf = Backfiller(venues.load(s), qdb)
    total = 0
    try:
        jobs: list[tuple[TradeWindow, Gap | None]] = []
        if open_gaps or gap_ts:
            for g in await stored_gaps(bf, open_gaps, parse_time_us(gap_ts) if gap_ts else None):
                jobs.append((window_of_gap(g), g))
            if not jobs:
                log.info("backfill: no matching gap")
        if instrument and start and end:
            jobs.append((TradeWindow(instrument, parse_time_us(start), parse_time_us(end)), None))
        conf = f"http::addr={s.questdb.host}:{s.questdb.http_port};auto_flush=off;retry_timeout=10000;"
        with Sender.from_conf(conf) as sender:
            for window, gap in jobs:
                trades = await bf.missing(window)
                enc = IlpEncoder(int(sender.protocol_version))
                enc.add_all(trades)
                if gap is not None:
                    enc.add(backfilled(gap, len(trades)))
                for _name, (buf, _n) in enc.take().items():
                    sender.flush(buf, transactional=True)
                total += len(trades)
                log.info(
                    "backfill: %s %s .. %s: %d missing trades inserted",
                    window.instrument, window.start_us, window.end_us, len(trades),
                )
    except IngressError as exc:
        raise BackfillError(f"QuestDB refused the backfilled rows: {exc}") from exc
    finally:
        await bf.aclose()
    return total
