"""The collector's supervision: the timers beside the hot path and the process's signals.

* ``fsync_loop``: ``journal.sync()`` every ``journal.fsync_interval_ms`` (the
  receive-to-fsync window of each sync is kept for the shutdown log);
* ``heartbeat_loop``: once a second, a ``collector_heartbeats`` row per connection, the gap
  and disk gauges, the housekeeping hooks, and the free-space gate: below
  ``journal.min_free_bytes`` the connections stop reading their sockets until there is room;
* ``run_until_signalled``: the CLI's main (SIGINT/SIGTERM stop the collector).

docs/architecture.md, docs/journal.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tickarchive.domain import ConnectionHeartbeat
from tickarchive.ingest.connection import ConnectionDriver, now_us
from tickarchive.ingest.gaps import GapLedger
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.metrics import CollectorMetrics
from tickarchive.store.questdb_writer import QuestDBWriter

log = logging.getLogger(__name__)


async def fsync_loop(
    journal: Journal, metrics: CollectorMetrics, interval_s: float, windows: collections.deque[float]
) -> None:
    last_bytes = journal.stats.appended_bytes
    while True:
        await asyncio.sleep(interval_s)
        took = journal.sync()
        if took:
            metrics.journal_fsync.observe(took)
            windows.append(journal.stats.window_seconds_last)
        b = journal.stats.appended_bytes
        if b > last_bytes:
            metrics.journal_bytes.inc(b - last_bytes)
            last_bytes = b


async def heartbeat_loop(
    drivers: Sequence[ConnectionDriver],
    journal: Journal,
    writer: QuestDBWriter,
    ledger: GapLedger,
    metrics: CollectorMetrics,
    journal_dir: Path,
    gate: asyncio.Event,
    min_free_bytes: int,
    housekeeping: Callable[[], None],
) -> None:
    """Every whole second; ``housekeeping`` runs each time (refused subscriptions asked
    again, quarantine items a full disk held back written)."""
    while True:
        await asyncio.sleep(1.0 - (time.time() % 1.0))
        now = now_us()
        rows = [
            ConnectionHeartbeat(
                d.name,
                now,
                d.connected and bool(d.session.subscribed_channels),
                len(d.session.subscribed_channels),
                d.frames,
                d.last_frame_us,
                journal.backlog_bytes,
            )
            for d in drivers
        ]
        if writer.healthy:
            writer.add_side(rows)  # liveness rows are not worth holding through an outage
        ledger.refresh_metrics(now)
        housekeeping()
        metrics.journal_backlog_bytes.set(journal.backlog_bytes)
        metrics.writer_buffered_rows.set(writer.buffered_rows)
        free, _total = metrics.update_disk(journal_dir)
        if free < min_free_bytes and gate.is_set():
            gate.clear()
            log.error(
                "JOURNAL DISK LOW: %d bytes free < journal.min_free_bytes %d; sockets are not read until "
                "there is room (Deribit may disconnect us: the gaps will say so)",
                free, min_free_bytes,
            )
        elif free >= min_free_bytes and not gate.is_set():
            gate.set()
            log.warning("journal disk has room again (%d bytes free); reading resumes", free)


async def run_until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """``await run(stop)`` until SIGINT/SIGTERM sets ``stop`` (the CLI's main)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
