"""Trade backfill from the history API (``history.deribit.com``; the simulator in tests).

``get_last_trades_by_instrument_and_time`` (one instrument: ``trade_seq`` gaps) and
``get_last_trades_by_currency_and_time`` (a whole connection or the whole collector:
``disconnect``, ``stale``, ``downtime`` windows), pages of at most 1000 in ascending
order, following ``has_more`` by advancing the start timestamp (trades sharing the
boundary millisecond are de-duplicated by trade id).

Only trades **not already stored** are inserted (``source = backfill``): re-sending a
stored trade would make the DEDUP upsert flip its ``source`` from ``ws`` to
``backfill``. "Stored" is read from QuestDB (``/exec``) after the writer acknowledged
the journal up to the gap's end and QuestDB applied its WAL, so the set is exact.
Quotes and book changes have no history: their gaps stay ``unrecoverable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from tickarchive.domain import ALL_INSTRUMENTS, Gap, GapKind, GapStatus, TradeTick
from tickarchive.ingest.errors import IngestError
from tickarchive.ingest.normalize import HistoryPage, parse_history_trades

log = logging.getLogger("tickarchive.backfill")

PAGE: Final = 1000
MARGIN_US: Final = 2_000_000
"""Widening of a connection-level window on both sides: trades in flight around the
last/first frame are re-checked (those already stored are skipped)."""


class BackfillError(IngestError):
    """The history API or QuestDB could not be read for a backfill."""


@dataclass(frozen=True, slots=True)
class Window:
    """What to re-fetch: one instrument (or ``*`` = every instrument of the configured
    currencies and kinds) between two exchange times (µs, inclusive)."""

    instrument: str
    start_us: int
    end_us: int
    first_seq: int | None = None
    last_seq: int | None = None

    @classmethod
    def of_gap(cls, gap: Gap, first_seq: int | None = None, last_seq: int | None = None) -> Window:
        end = gap.end_us if gap.end_us is not None else time.time_ns() // 1000
        if gap.kind is GapKind.TRADE_SEQ and gap.instrument != ALL_INSTRUMENTS:
            return cls(gap.instrument, gap.start_us, end, first_seq, last_seq)
        return cls(gap.instrument, gap.start_us - MARGIN_US, end + MARGIN_US, first_seq, last_seq)


class Backfiller:
    """History API client + QuestDB "already stored" check. One per collector."""

    def __init__(
        self,
        history_url: str,
        questdb_http_url: str,
        currencies: Iterable[str],
        kinds: Iterable[str],
        timeout_s: float = 30.0,
        metrics: Any | None = None,
    ) -> None:
        self.history_url = history_url.rstrip("/")
        self.questdb_url = questdb_http_url.rstrip("/")
        self.currencies = tuple(currencies)
        self.kinds = tuple(kinds)
        self.metrics = metrics
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- history API ----------------------------------------------------------------

    async def _page(self, method: str, params: dict[str, Any]) -> HistoryPage:
        url = f"{self.history_url}/public/{method}"
        try:
            r = await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise BackfillError(f"history API {url} unreachable: {exc}") from exc
        if r.status_code != 200:
            raise BackfillError(f"history API {url} answered HTTP {r.status_code}: {r.text[:200]}")
        page = parse_history_trades(r.content, time.time_ns() // 1000)
        if not isinstance(page, HistoryPage):
            raise BackfillError(f"history API {url}: unreadable page ({page.detail})")
        return page

    async def history(self, window: Window) -> list[TradeTick]:
        """Every trade of the window from the history API (legs expanded), by trade id."""
        if window.instrument != ALL_INSTRUMENTS:
            targets: list[tuple[str, dict[str, Any]]] = [
                ("get_last_trades_by_instrument_and_time", {"instrument_name": window.instrument})
            ]
        else:
            targets = [
                ("get_last_trades_by_currency_and_time", {"currency": c, "kind": k})
                for c in self.currencies
                for k in self.kinds
            ]
        seen: dict[tuple[str, str], TradeTick] = {}
        for method, base in targets:
            start_ms = window.start_us // 1000
            end_ms = -(-window.end_us // 1000)
            while True:
                params = {**base, "start_timestamp": start_ms, "end_timestamp": end_ms}
                params.update(count=PAGE, sorting="asc")
                page = await self._page(method, params)
                for t in page.trades:
                    seen.setdefault((t.instrument, t.trade_id), t)
                if not page.has_more or not page.trades:
                    break
                last_ms = page.trades[-1].ts_us // 1000
                if last_ms <= start_ms:
                    log.warning("backfill: over %d trades in one ms at %d; skipping ahead", PAGE, start_ms)
                    last_ms = start_ms + 1
                start_ms = last_ms
        out = list(seen.values())
        if window.first_seq is not None and window.last_seq is not None:
            lo, hi = window.first_seq, window.last_seq
            out = [t for t in out if lo <= t.trade_seq <= hi or t.instrument != window.instrument]
        return out

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

    async def stored(self, window: Window) -> set[tuple[str, str]]:
        """(instrument, trade_id) of the trades QuestDB holds in the window."""
        where = f"ts BETWEEN cast({window.start_us} AS timestamp) AND cast({window.end_us} AS timestamp)"
        if window.instrument != ALL_INSTRUMENTS:
            inst = window.instrument.replace("'", "''")
            where += f" AND instrument = '{inst}'"
        rows = await self._exec(f"SELECT instrument, trade_id FROM trades WHERE {where}")
        return {(str(r[0]), str(r[1])) for r in rows}

    async def missing(self, window: Window) -> list[TradeTick]:
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

    s = load_settings()
    qdb = f"http://{s.questdb.host}:{s.questdb.http_port}"
    bf = Backfiller(history_url or s.deribit.history_url, qdb, s.deribit.currencies, s.deribit.kinds)
    total = 0
    try:
        jobs: list[tuple[Window, Gap | None]] = []
        if open_gaps or gap_ts:
            for g in await stored_gaps(bf, open_gaps, parse_time_us(gap_ts) if gap_ts else None):
                jobs.append((Window.of_gap(g), g))
            if not jobs:
                log.info("backfill: no matching gap")
        if instrument and start and end:
            jobs.append((Window(instrument, parse_time_us(start), parse_time_us(end)), None))
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
