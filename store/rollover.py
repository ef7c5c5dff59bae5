"""The rollover: sealed days move from QuestDB (hot) to the warm store, verified, then dropped.

Per sealed day D and table T (``docs/lifecycle.md`` has the whole argument):

1. ``load``     stream T's rows of D out of QuestDB and insert them into the warm store
                (ON CONFLICT DO NOTHING on the dedup index), computing the hot checksum;
2. ``compress`` compress D's chunk (TimescaleDB);
3. ``rollups``  refresh ``trades_1m``/``quotes_1m`` for D;
4. ``coverage`` replace ``coverage_daily`` for (D, T);
5. ``verify``   row count and content checksum per instrument, hot vs warm;
6. ``ledger``   upsert ``rollover_ledger`` (D, T) as ``verified`` (or ``mismatch``);
7. ``drop``     (separately, for every table) drop the QuestDB partition of a day older
                than ``lifecycle.hot_retention_days`` whose ledger row is verified and
                whose hot row count still equals the ledger's.

Ledger statuses: ``loading`` → ``verified`` → ``dropped`` (or ``mismatch``). Once a
day's hot partition has been dropped its hot side is partial: late rows that arrive for
that day are checked as a *delta* (``delta_loading`` → ``delta_verified`` → ``dropped``):
every hot row must be in the warm store with identical content, and the warm count may
only grow.

Every step is idempotent and the ledger is written last, so a crash anywhere leaves a
state the next run completes: it re-streams the (day, table), inserts only what is
missing, recomputes the derived data and verifies again. ``hook`` is called before each
step (tests raise from it to simulate a crash there).
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.settings import LifecycleSettings
from tickarchive.store import seal
from tickarchive.store.checksum import Checksum, ChecksumAccumulator, checksum_of
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import NotSealed
from tickarchive.store.hot import HotReader, HotStore
from tickarchive.store.warm import LedgerRow, WarmStore
from tickarchive.tables import ALL_TABLES, GAPS, QUOTES, TRADES, Table


class Step(enum.StrEnum):
    LOAD = "load"
    COMPRESS = "compress"
    ROLLUPS = "rollups"
    COVERAGE = "coverage"
    VERIFY = "verify"
    LEDGER = "ledger"
    DROP = "drop"


class Status(enum.StrEnum):
    LOADING = "loading"
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    DROPPED = "dropped"
    DELTA_LOADING = "delta_loading"
    DELTA_VERIFIED = "delta_verified"
    DELTA_MISMATCH = "delta_mismatch"


PARTIAL_HOT = frozenset({Status.DROPPED, Status.DELTA_LOADING, Status.DELTA_VERIFIED, Status.DELTA_MISMATCH})
"""Statuses meaning the day's hot partition was dropped once: QuestDB holds at most late rows."""
DROPPABLE = frozenset({Status.VERIFIED, Status.DELTA_VERIFIED})


class Action(enum.StrEnum):
    FULL = "copy"
    DELTA = "copy late rows"
    UNCHANGED = "unchanged"
    MARK_DROPPED = "mark dropped"


Hook = Callable[[Step, Table, dt.date], None]


def _no_hook(step: Step, table: Table, day: dt.date) -> None:
    pass


# gaps first: coverage of the other tables reads the day's gaps from the warm store;
# trades before quotes: see _rollups_later
ROLLOVER_TABLES: tuple[Table, ...] = (GAPS, TRADES, QUOTES, *(t for t in ALL_TABLES if t not in (GAPS, TRADES, QUOTES)))


def plan(ledger: LedgerRow | None, hot_rows: int) -> Action:
    """What a run does for one (day, table), from its ledger row and QuestDB's row count."""
    if ledger is None:
        return Action.FULL
    status = Status(ledger.status) if ledger.status in Status.__members__.values() else Status.LOADING
    if status in PARTIAL_HOT:
        if hot_rows == 0:
            return Action.UNCHANGED if status is Status.DROPPED else Action.MARK_DROPPED
        if status is Status.DELTA_VERIFIED and hot_rows == ledger.rows_hot:
            return Action.UNCHANGED
        return Action.DELTA
    if status is Status.VERIFIED:
        if hot_rows == ledger.rows_hot:
            return Action.UNCHANGED
        if hot_rows == 0:
            return Action.MARK_DROPPED  # dropped after verification, ledger not yet updated
        return Action.FULL
    return Action.FULL


@dataclass(frozen=True, slots=True)
class TableOutcome:
    day: dt.date
    table: str
    action: Action
    rows_hot: int
    rows_warm: int | None = None
    inserted: int = 0
    checksum_hot: str | None = None
    checksum_warm: str | None = None
    problems: tuple[str, ...] = ()
    dry_run: bool = False
    seconds: Mapping[Step, float] = field(default_factory=dict)
    """Wall time per step (load includes reading QuestDB)."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class DropOutcome:
    day: dt.date
    table: str
    dropped: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RolloverReport:
    now_us: int
    seals: tuple[seal.SealDecision, ...] = ()
    tables: tuple[TableOutcome, ...] = ()
    drops: tuple[DropOutcome, ...] = ()
    dry_run: bool = False

    @property
    def problems(self) -> list[str]:
        return [f"{o.day} {o.table}: {p}" for o in self.tables for p in o.problems]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class RolloverOptions:
    hot_retention_days: int = 7
    seal_grace_min: int = 30
    backfill_timeout_min: int = 120
    reader: HotReader = HotReader.AUTO
    tables: tuple[Table, ...] = ROLLOVER_TABLES
    dry_run: bool = False
    drop: bool = True

    @classmethod
    def from_settings(cls, s: LifecycleSettings, **overrides: object) -> RolloverOptions:
        base = cls(
            hot_retention_days=s.hot_retention_days,
            seal_grace_min=s.seal_grace_min,
            backfill_timeout_min=s.backfill_timeout_min,
        )
        return _replace(base, overrides)

    def lifecycle(self) -> LifecycleSettings:
        return LifecycleSettings(
            hot_retention_days=self.hot_retention_days,
            seal_grace_min=self.seal_grace_min,
            backfill_timeout_min=self.backfill_timeout_min,
        )


def _replace(o: RolloverOptions, overrides: dict[str, object]) -> RolloverOptions:
    import dataclasses

    return dataclasses.replace(o, **overrides)  # type: ignore[arg-type]


@dataclass
class _Run:
    hot: HotStore
    warm: WarmStore
    options: RolloverOptions
    hook: Hook
    progress: Progress
    outcomes: list[TableOutcome] = field(default_factory=list)


def today_of(now_us: int) -> dt.date:
    return seal.day_of_us(now_us)


def candidate_days(hot: HotStore, tables: Sequence[Table], now_us: int) -> list[dt.date]:
    """Days before today that QuestDB holds a partition of, for any of ``tables``."""
    today = today_of(now_us)
    return sorted({p.day for t in tables for p in hot.partitions(t) if p.day < today})


def run(
    hot: HotStore,
    warm: WarmStore,
    now_us: int,
    options: RolloverOptions,
    *,
    day: dt.date | None = None,
    hook: Hook = _no_hook,
    progress: Progress = NO_PROGRESS,
) -> RolloverReport:
    """Roll over every sealed day QuestDB still holds (or only ``day``), then drop old partitions.

    An explicit ``day`` that is not sealed raises ``NotSealed``. Mismatches do not raise:
    they are in the report (``report.problems``) and block the drop of that (day, table).
    """
    days = [day] if day is not None else candidate_days(hot, options.tables, now_us)
    r = _Run(hot, warm, options, hook, progress)
    seals = []
    for d in days:
        decision = seal.decide(d, now_us, seal.observe(hot.conn, d), options.lifecycle())
        seals.append(decision)
        if not decision.sealed:
            if day is not None:
                raise NotSealed(f"{d} is not sealed: " + "; ".join(decision.reasons))
            progress.note(f"{d}: not sealed ({'; '.join(decision.reasons)})")
            continue
        plans = {t.name: _plan_of(r, t, d) for t in options.tables}
        for t in options.tables:
            r.outcomes.append(_table_day(r, t, d, plans[t.name], _rollups_later(r, t, plans)))
    drops = _drop_old(r, now_us) if options.drop else []
    return RolloverReport(now_us, tuple(seals), tuple(r.outcomes), tuple(drops), options.dry_run)


@dataclass(frozen=True, slots=True)
class _Plan:
    ledger: LedgerRow | None
    hot_rows: int
    action: Action


def _plan_of(r: _Run, table: Table, day: dt.date) -> _Plan:
    ledger = r.warm.ledger(day, table.name)
    hot_rows = r.hot.count(table, day)
    return _Plan(ledger, hot_rows, plan(ledger, hot_rows))


def _rollups_later(r: _Run, table: Table, plans: Mapping[str, _Plan]) -> bool:
    """Plain PostgreSQL: ``tickarchive_refresh_rollups`` recomputes trades_1m AND quotes_1m,
    so the trades step leaves it to the quotes step when quotes is copied later in this
    run. (Safe across crashes: the quotes ledger row cannot reach ``verified`` before that
    refresh ran.)"""
    if r.warm.dialect is not Dialect.POSTGRES or table.name != "trades" or "quotes" not in plans:
        return False
    names = [t.name for t in r.options.tables]
    return names.index("quotes") > names.index("trades") and plans["quotes"].action in (Action.FULL, Action.DELTA)


def _table_day(r: _Run, table: Table, day: dt.date, p: _Plan, skip_rollups: bool = False) -> TableOutcome:
    ledger, hot_rows, action = p.ledger, p.hot_rows, p.action
    if r.options.dry_run or action is Action.UNCHANGED:
        return TableOutcome(day, table.name, action, hot_rows, ledger.rows_warm if ledger else None,
                            dry_run=r.options.dry_run)
    if action is Action.MARK_DROPPED:
        assert ledger is not None
        r.warm.set_status(day, table.name, Status.DROPPED)
        return TableOutcome(day, table.name, action, hot_rows, ledger.rows_warm)
    delta = action is Action.DELTA
    clock = _StepClock()
    clock.start(Step.LOAD)
    r.hook(Step.LOAD, table, day)
    if ledger is None or not delta:
        r.warm.write_ledger(LedgerRow(day, table.name, None, None, None, None, Status.LOADING))
    else:
        r.warm.set_status(day, table.name, Status.DELTA_LOADING)
    acc = ChecksumAccumulator(table)
    inserted = 0
    hot_ts: list[int] = []
    keys: set[tuple[object, ...]] = set()
    streamed = 0
    task = r.progress.task(f"{day} {table.name}: QuestDB → warm", hot_rows, "rows")
    fresh = hot_rows > 0 and r.warm.count_day(table, day) == 0
    if hot_rows:
        for batch in r.hot.batches(table, day, r.options.reader):
            acc.add(batch)
            streamed += batch.num_rows
            if delta:
                hot_ts.extend(batch.column("ts").cast(pa.int64()).to_pylist())
                keys.update(_keys(table, batch))
            inserted += r.warm.load(table, batch, day, fresh=fresh)
            task.advance(batch.num_rows)
    task.done()
    hot_sum = acc.result()
    clock.start(Step.COMPRESS)
    r.hook(Step.COMPRESS, table, day)
    r.warm.compress_day(table, day)
    clock.start(Step.ROLLUPS)
    r.hook(Step.ROLLUPS, table, day)
    if not skip_rollups:
        r.warm.refresh_rollups(table, day)
    clock.start(Step.COVERAGE)
    r.hook(Step.COVERAGE, table, day)
    r.warm.fill_coverage(table, day)
    clock.start(Step.VERIFY)
    r.hook(Step.VERIFY, table, day)
    warm_rows = r.warm.count_day(table, day)
    problems: list[str] = []
    if delta:
        assert ledger is not None
        matched = _matching(table, r.warm.day_batches(table, day, ts_in=hot_ts), keys) if hot_ts else []
        warm_sum = checksum_of(table, matched)
        problems += hot_sum.differences(warm_sum)
        before = ledger.rows_warm or 0
        if warm_rows < before:
            problems.append(f"warm rows fell from {before} to {warm_rows}")
        status = Status.DELTA_MISMATCH if problems else Status.DELTA_VERIFIED
    else:
        warm_sum = checksum_of(table, r.warm.day_batches(table, day))
        if streamed != hot_rows:
            problems.append(f"QuestDB counted {hot_rows} rows but the export streamed {streamed}")
        if warm_rows != streamed:
            problems.append(f"row counts differ: hot {streamed}, warm {warm_rows}")
        problems += hot_sum.differences(warm_sum)
        status = Status.MISMATCH if problems else Status.VERIFIED
    clock.start(Step.LEDGER)
    r.hook(Step.LEDGER, table, day)
    r.warm.write_ledger(
        LedgerRow(day, table.name, streamed, warm_rows, hot_sum.hex(), warm_sum.hex(), status)
    )
    clock.start(None)
    return TableOutcome(day, table.name, action, streamed, warm_rows, inserted, hot_sum.hex(), warm_sum.hex(),
                        tuple(problems), seconds=clock.seconds)


class _StepClock:
    def __init__(self) -> None:
        self.seconds: dict[Step, float] = {}
        self._step: Step | None = None
        self._t = time.perf_counter()

    def start(self, step: Step | None) -> None:
        now = time.perf_counter()
        if self._step is not None:
            self.seconds[self._step] = self.seconds.get(self._step, 0.0) + now - self._t
        self._step, self._t = step, now


def _keys(table: Table, batch: pa.RecordBatch) -> list[tuple[object, ...]]:
    cols = [batch.column(k).to_pylist() for k in table.dedup_keys]
    return list(zip(*cols, strict=True))


def _matching(table: Table, batches: object, keys: set[tuple[object, ...]]) -> list[pa.Table]:
    """The warm rows whose dedup key is among ``keys`` (the late rows' keys)."""
    from collections.abc import Iterable

    assert isinstance(batches, Iterable)
    out = []
    for b in batches:
        mask = [k in keys for k in _keys(table, b)]
        out.append(pa.Table.from_batches([b]).filter(pa.array(mask, pa.bool_())))
    return out


def _drop_old(r: _Run, now_us: int) -> list[DropOutcome]:
    """Drop QuestDB partitions older than the hot retention whose ledger row is verified."""
    cutoff = today_of(now_us) - dt.timedelta(days=r.options.hot_retention_days)
    out = []
    for t in r.options.tables:
        for p in r.hot.partitions(t):
            if p.day >= cutoff:
                continue
            ledger = r.warm.ledger(p.day, t.name)
            if ledger is None or ledger.status not in DROPPABLE:
                why = "not rolled over" if ledger is None else f"ledger status {ledger.status}"
                out.append(DropOutcome(p.day, t.name, False, f"kept: {why}"))
                continue
            rows_now = r.hot.count(t, p.day)
            if rows_now != ledger.rows_hot:
                out.append(DropOutcome(p.day, t.name, False,
                                       f"kept: {rows_now} hot rows, ledger verified {ledger.rows_hot}"))
                continue
            if r.options.dry_run:
                out.append(DropOutcome(p.day, t.name, False, f"would drop ({rows_now} rows verified)"))
                continue
            r.hook(Step.DROP, t, p.day)
            r.hot.drop_partition(t, p.day)
            r.warm.set_status(p.day, t.name, Status.DROPPED)
            out.append(DropOutcome(p.day, t.name, True, f"dropped ({rows_now} rows verified)"))
    return out


def checksum_hot(hot: HotStore, table: Table, day: dt.date, reader: HotReader = HotReader.AUTO) -> Checksum:
    return checksum_of(table, hot.batches(table, day, reader))


def checksum_warm(warm: WarmStore, table: Table, day: dt.date) -> Checksum:
    return checksum_of(table, warm.day_batches(table, day))
