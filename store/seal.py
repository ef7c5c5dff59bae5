"""The sealing rule (docs/lifecycle.md): when a UTC day may leave the hot store.

Day D is *sealed* at time ``now`` when all three hold:

1. **grace**: ``now >= D+1 00:00 UTC + lifecycle.seal_grace_min``;
2. **shipped**: QuestDB already holds a row *received* (``recv_ts``) at or after D+1
   00:00 (in ``quotes``, ``trades``, ``index_ticks`` or ``collector_heartbeats``) and has
   no WAL transaction pending on any table. The writer advances the journal checkpoint
   only after QuestDB acknowledged, and replays in order, so a row received after D+1
   being acknowledged means every frame of D was acknowledged too; an applied WAL means
   those rows are visible. (We read this from QuestDB rather than from the journal's
   checkpoint file so the rule holds wherever the rollover runs, and is testable with
   rows alone.)
3. **backfills**: no gap the collector backfills (``trade_seq``, ``disconnect``,
   ``downtime``, connection-wide ``stale``) overlapping D is still ``open``,
   or ``now >= D+1 + lifecycle.backfill_timeout_min`` (backfills that still fail by then
   are given up: the gap stays recorded and shows in ``coverage_daily``).

``decide`` is pure (time is a parameter: tests pass accelerated time); ``observe``
reads the inputs from QuestDB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from tickarchive.settings import LifecycleSettings
from tickarchive.store.errors import HotReadError

US_PER_MIN = 60_000_000
US_PER_DAY = 86_400_000_000
SHIP_TABLES = ("collector_heartbeats", "index_ticks", "trades", "quotes")
"""Checked in this order (small tables first); the first holding a row received after D+1 settles it."""
BACKFILL_KINDS = ("trade_seq", "disconnect", "downtime")
"""Gap kinds the collector backfills (``ingest.gaps.BACKFILL_KINDS``; ``stale`` too when it is
connection-wide, instrument ``'*'``); such a gap stays ``open`` until it is ``backfilled``."""
_EPOCH = dt.date(1970, 1, 1)


def day_start_us(day: dt.date) -> int:
    return (day - _EPOCH).days * US_PER_DAY


def day_of_us(ts_us: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=ts_us // US_PER_DAY)


def iso_us(ts_us: int) -> str:
    """QuestDB timestamp literal (UTC, microseconds)."""
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class SealInputs:
    shipped_until_us: int | None
    """Latest ``recv_ts`` QuestDB holds among rows of D+1 or later; None if none."""
    wal_pending_tables: tuple[str, ...]
    """Tables with committed but not yet applied WAL transactions."""
    open_backfills: int
    """Open gaps awaiting a backfill (see ``BACKFILL_KINDS``) overlapping the day."""


@dataclass(frozen=True, slots=True)
class SealDecision:
    day: dt.date
    sealed: bool
    reasons: tuple[str, ...]
    """Why not (empty when sealed); a timed-out backfill is noted here even when sealed."""


def decide(day: dt.date, now_us: int, inputs: SealInputs, settings: LifecycleSettings) -> SealDecision:
    end_us = day_start_us(day) + US_PER_DAY
    blockers: list[str] = []
    notes: list[str] = []
    grace_until = end_us + settings.seal_grace_min * US_PER_MIN
    if now_us < grace_until:
        blockers.append(f"grace period runs until {iso_us(grace_until)}")
    if inputs.shipped_until_us is None or inputs.shipped_until_us < end_us:
        blockers.append(
            f"QuestDB holds no row received at or after {iso_us(end_us)} (journal not shipped past the day)"
        )
    if inputs.wal_pending_tables:
        blockers.append(f"QuestDB WAL not applied yet on {', '.join(inputs.wal_pending_tables)}")
    if inputs.open_backfills:
        timeout_at = end_us + settings.backfill_timeout_min * US_PER_MIN
        if now_us < timeout_at:
            blockers.append(f"{inputs.open_backfills} backfill gap(s) still open (timeout {iso_us(timeout_at)})")
        else:
            notes.append(f"{inputs.open_backfills} backfill gap(s) still open past the timeout: sealed anyway")
    return SealDecision(day, not blockers, tuple(blockers or notes))


def observe(conn: psycopg.Connection[tuple[object, ...]], day: dt.date) -> SealInputs:
    """Read the sealing inputs for ``day`` from QuestDB (a PG-wire connection, autocommit)."""
    start, end = day_start_us(day), day_start_us(day) + US_PER_DAY
    try:
        shipped: int | None = None
        for t in SHIP_TABLES:
            col = "ts" if t == "collector_heartbeats" else "recv_ts"  # heartbeats: ts is our time
            row = conn.execute(f"SELECT max(cast({col} AS long)) FROM {t} WHERE ts >= '{iso_us(end)}'").fetchone()
            if row and row[0] is not None:
                value = int(str(row[0]))
                shipped = value if shipped is None else max(shipped, value)
                if shipped >= end:
                    break  # enough: the bigger tables need not be scanned
        pending = conn.execute(
            "SELECT name FROM wal_tables() WHERE writerTxn < sequencerTxn OR suspended"
        ).fetchall()
        kinds = ", ".join(f"'{k}'" for k in BACKFILL_KINDS)
        gaps = conn.execute(
            f"SELECT count() FROM gaps WHERE (kind IN ({kinds}) OR (kind = 'stale' AND instrument = '*')) "
            "AND status = 'open' "
            f"AND ts < '{iso_us(end)}' AND (end_ts IS NULL OR end_ts >= '{iso_us(start)}')"
        ).fetchone()
    except psycopg.Error as exc:
        raise HotReadError(f"cannot read the sealing state of {day} from QuestDB: {exc}") from exc
    return SealInputs(
        shipped_until_us=shipped,
        wal_pending_tables=tuple(sorted(str(r[0]) for r in pending)),
        open_backfills=int(str(gaps[0])) if gaps else 0,
    )
