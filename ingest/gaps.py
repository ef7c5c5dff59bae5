"""Gap bookkeeping: every gap row the collector writes, and what happens next.

The session (``tickarchive.venues.deribit.session``) *detects* gaps; this module keeps the ledger: open gaps
(metrics ``tickarchive_open_gaps`` / ``tickarchive_max_open_gap_seconds``), the rows
written to the ``gaps`` table (a re-write with the same ``ts, instrument, kind`` updates
the row through its dedup key), and the gaps that need a trade backfill.

Statuses (docs/collector.md, "Gaps"):

* ``open``: still going, or closed and waiting for its backfill;
* ``resolved``: closed, nothing was lost that could be recovered (a refused subscription
  later granted);
* ``backfilled``: the trades of the window were re-fetched from the history API (the
  quotes and book changes of a ``disconnect``/``stale``/``downtime`` window are still
  missing: the ``cause`` says so);
* ``unrecoverable``: quotes/book changes only (``book_seq``, instrument ``stale``).

``downtime_gap`` builds the start-up gap from the previous run's last journaled frame
(or its last heartbeat) to now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from tickarchive.domain import ALL_INSTRUMENTS, Gap, GapKind, GapStatus

log = logging.getLogger(__name__)

BACKFILL_KINDS: Final = frozenset({GapKind.DISCONNECT, GapKind.STALE, GapKind.TRADE_SEQ, GapKind.DOWNTIME})
"""Gaps whose trades the history API can restore (``stale`` only for a whole connection)."""

COLLECTOR_CONNECTION: Final = "collector"


def needs_backfill(gap: Gap) -> bool:
    if gap.kind not in BACKFILL_KINDS or gap.end_us is None:
        return False
    if gap.kind is GapKind.STALE and gap.instrument != ALL_INSTRUMENTS:
        return False
    return gap.status is GapStatus.OPEN


GapKey = tuple[int, str, str, str]
"""(start, instrument, kind, connection): the gaps table's dedup key."""


def key_of(gap: Gap) -> GapKey:
    """The gap's identity: the gaps table's dedup key (start, instrument, kind, connection)."""
    return gap.start_us, gap.instrument, gap.kind.value, gap.connection


@dataclass(frozen=True, slots=True)
class BackfillJob:
    gap: Gap
    first_missing_seq: int | None = None
    last_missing_seq: int | None = None
    after_seq: int = 0
    """Journal seq at which the gap closed: the backfill waits until QuestDB acknowledged
    it, so that 'already stored' is known exactly."""


class GapLedger:
    """Open gaps, their rows and their backfill jobs. ``emit`` receives every row to
    write (the writer's ``add_side``); ``schedule`` every backfill job."""

    def __init__(
        self,
        emit: Callable[[list[Any]], None],
        schedule: Callable[[BackfillJob], None],
        metrics: Any | None = None,
    ) -> None:
        self._emit = emit
        self._schedule = schedule
        self._metrics = metrics
        self.open: dict[GapKey, Gap] = {}
        self.history: list[Gap] = []
        """Every gap row written, in order (the last version of a key is the current one)."""
        self._max_history = 10_000

    def record(
        self,
        gap: Gap,
        first_missing_seq: int | None = None,
        last_missing_seq: int | None = None,
        journal_seq: int = 0,
    ) -> None:
        """A gap opened (``end_us`` None) or closed/updated by the session or the collector."""
        key = key_of(gap)
        m = self._metrics
        if gap.end_us is None:
            if key not in self.open:
                if m is not None:
                    m.gaps.labels(kind=gap.kind.value).inc()
                log.warning(
                    "gap opened: %s %s on %s from %s (%s)",
                    gap.kind.value, gap.instrument, gap.connection, _iso(gap.start_us), gap.cause,
                )
            self.open[key] = gap
        else:
            was_open = self.open.pop(key, None)
            if was_open is None and m is not None and gap.kind in (GapKind.TRADE_SEQ, GapKind.DOWNTIME):
                m.gaps.labels(kind=gap.kind.value).inc()  # born closed: count it opened too
            log.warning(
                "gap %s: %s %s on %s %s .. %s (%.3f s, %s)",
                "closed" if gap.status is GapStatus.OPEN else gap.status.value,
                gap.kind.value, gap.instrument, gap.connection, _iso(gap.start_us), _iso(gap.end_us),
                (gap.end_us - gap.start_us) / 1e6, gap.cause,
            )
        self._write(gap)
        self.refresh_metrics()
        if needs_backfill(gap):
            self._schedule(BackfillJob(gap, first_missing_seq, last_missing_seq, journal_seq))

    def update(self, gap: Gap) -> None:
        """Re-write a gap row (status change after a backfill)."""
        self._write(gap)

    def _write(self, gap: Gap) -> None:
        self.history.append(gap)
        if len(self.history) > self._max_history:
            del self.history[: len(self.history) - self._max_history]
        self._emit([gap])

    def refresh_metrics(self, now_us: int | None = None) -> None:
        m = self._metrics
        if m is None:
            return
        now = now_us if now_us is not None else time.time_ns() // 1000
        counts: dict[str, int] = {k.value: 0 for k in GapKind}
        oldest: dict[str, float] = {k.value: 0.0 for k in GapKind}
        for g in self.open.values():
            k = g.kind.value
            counts[k] += 1
            oldest[k] = max(oldest[k], (now - g.start_us) / 1e6)
        for k in counts:
            m.open_gaps.labels(kind=k).set(counts[k])
            m.max_open_gap.labels(kind=k).set(oldest[k])

    def current(self) -> dict[GapKey, Gap]:
        """The latest version of every gap written (bounded by ``history``)."""
        out: dict[GapKey, Gap] = {}
        for g in self.history:
            out[key_of(g)] = g
        return out


def downtime_gap(
    last_seen_us: int | None, now_us: int, cause: str, connection: str = COLLECTOR_CONNECTION
) -> Gap | None:
    """The gap for the time the collector was not running (None on a first start)."""
    if last_seen_us is None or last_seen_us >= now_us:
        return None
    return Gap(GapKind.DOWNTIME, ALL_INSTRUMENTS, last_seen_us, now_us, cause, connection, GapStatus.OPEN)


def with_status(gap: Gap, status: GapStatus, cause: str | None = None) -> Gap:
    return Gap(gap.kind, gap.instrument, gap.start_us, gap.end_us, cause or gap.cause, gap.connection, status)


def _iso(us: int | None) -> str:
    if us is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us / 1e6)) + f".{us % 1_000_000:06d}Z"
