"""The collector's trade backfills: a bounded queue of jobs for closed gaps, worked in batches.

The gap ledger (``tickarchive.ingest.gaps.GapLedger``) schedules a job when a
``disconnect``/``stale``/``trade_seq``/``downtime`` gap closes. The ``backfill`` task
(``BackfillQueue.run``) takes every job queued, waits once for QuestDB to acknowledge
everything journaled so far, then asks the venue's history API per gap for the trades
QuestDB does not hold (``tickarchive.ingest.backfill``); they are journaled as a side
record and stored like live rows. At start, ``resume`` queues again the gaps a previous
run closed but never backfilled (its queue died with it). docs/collector.md ("Backfill").
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, Final

from tickarchive.ingest.backfill import Backfiller, backfilled, stored_gaps, window_of_gap
from tickarchive.ingest.connection import now_us
from tickarchive.ingest.errors import BackfillError
from tickarchive.ingest.gaps import BackfillJob, GapLedger
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.metrics import CollectorMetrics
from tickarchive.store.questdb_writer import QuestDBWriter

log = logging.getLogger(__name__)

QUEUE_JOBS: Final = 256
ATTEMPTS: Final = 6


def _retry_delay_s(attempt: int) -> float:
    return min(30.0, 0.5 * 2.0**attempt)


class BackfillQueue:
    """Jobs for closed gaps (at most ``QUEUE_JOBS``; a full queue leaves the gap open and
    says which command backfills it later)."""

    def __init__(self, metrics: CollectorMetrics, history_max: int) -> None:
        self.metrics = metrics
        self.idle = asyncio.Event()
        """Set while no job is queued or running (tests, the CLI's status)."""
        self.idle.set()
        self.history: collections.deque[tuple[str, int]] = collections.deque(maxlen=history_max)
        """(gap key text, trades inserted) of the last finished backfills (bounded:
        ``collector.backfill_history_max``; the gaps table keeps every one)."""
        self.failures = 0
        """Jobs given up after ``ATTEMPTS`` (their gaps stay open)."""
        self._q: asyncio.Queue[BackfillJob] = asyncio.Queue(maxsize=QUEUE_JOBS)

    def schedule(self, job: BackfillJob) -> None:
        try:
            self._q.put_nowait(job)
            self.idle.clear()
        except asyncio.QueueFull:
            log.error(
                "backfill queue full (%d jobs): gap %s %s from %d stays open; run `tickarchive backfill --open`",
                QUEUE_JOBS, job.gap.kind.value, job.gap.instrument, job.gap.start_us,
            )

    async def run(
        self, bf: Backfiller, journal: Journal, writer: QuestDBWriter, ledger: GapLedger,
        journal_side: Callable[[list[Any]], None],
    ) -> None:
        """The ``backfill`` task: every queued job, in batches, for ever."""
        while True:
            if self._q.empty():
                self.idle.set()
            jobs = [await self._q.get()]
            self.idle.clear()
            while not self._q.empty():
                jobs.append(self._q.get_nowait())
            await self._batch(bf, journal, writer, ledger, journal_side, jobs)

    async def resume(self, bf: Backfiller, journal: Journal, writer: QuestDBWriter) -> None:
        """Backfill the gaps a previous run closed but did not backfill: its queue of jobs
        died with it (a SIGKILL while the backfill waited for QuestDB). Their rows are in
        the journal; once QuestDB acknowledged the journal as it was at this start, the
        ``gaps`` table lists them (closed, status still ``open``)."""
        started_us = now_us()
        upto = journal.last_seq
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if not await writer.wait_acked(upto, timeout_s=600.0):
                    raise BackfillError(f"QuestDB has not acknowledged the journal up to seq {upto}")
                await bf.wait_wal("gaps")
                left = [g for g in await stored_gaps(bf, True, None) if g.end_us is not None and g.end_us < started_us]
            except BackfillError as exc:
                log.warning("backfill: gaps of the previous run not read yet (attempt %d): %s", attempt, exc)
                await asyncio.sleep(_retry_delay_s(attempt))
                continue
            for g in left:
                log.info("backfill: resuming %s %s on %s from %d (closed by a previous run)",
                         g.kind.value, g.instrument, g.connection, g.start_us)
                self.schedule(BackfillJob(g, after_seq=upto))
            return
        log.error("backfill: gaps of the previous run not resumed; run `tickarchive backfill --open`")

    async def _batch(
        self, bf: Backfiller, journal: Journal, writer: QuestDBWriter, ledger: GapLedger,
        journal_side: Callable[[list[Any]], None], jobs: list[BackfillJob],
    ) -> None:
        """Backfill queued gaps together: one wait for QuestDB to hold everything
        journaled so far, then per gap the history trades it does not hold yet."""
        left = list(jobs)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                upto = max(max(j.after_seq for j in left), journal.last_seq)
                if not await writer.wait_acked(upto, timeout_s=120.0):
                    raise BackfillError(f"QuestDB has not acknowledged the journal up to seq {upto}")
                await bf.wait_wal()
                inserted: set[tuple[str, str]] = set()
                while left:
                    job = left[0]
                    gap = job.gap
                    found = await bf.missing(window_of_gap(gap, job.first_missing_seq, job.last_missing_seq))
                    trades = [t for t in found if (t.instrument, t.trade_id) not in inserted]
                    inserted.update((t.instrument, t.trade_id) for t in trades)
                    journal_side(trades)
                    self.metrics.backfilled_trades.inc(len(trades))
                    ledger.update(backfilled(gap, len(trades)))
                    self.history.append((f"{gap.kind.value} {gap.instrument} {gap.start_us}", len(trades)))
                    log.info(
                        "backfill: %s %s on %s: %d missing trades inserted (source=backfill)",
                        gap.kind.value, gap.instrument, gap.connection, len(trades),
                    )
                    left.pop(0)
                return
            except BackfillError as exc:
                self.metrics.backfill_errors.inc()
                delay = _retry_delay_s(attempt)
                log.warning(
                    "backfill of %d gaps failed (attempt %d/%d): %s; retry in %.0f s",
                    len(left), attempt, ATTEMPTS, exc, delay,
                )
                await asyncio.sleep(delay)
        self.failures += len(left)
        for job in left:
            log.error(
                "backfill of %s %s from %d gave up; the gap stays open: run `tickarchive backfill --open`",
                job.gap.kind.value, job.gap.instrument, job.gap.start_us,
            )
