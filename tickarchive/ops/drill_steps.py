"""The steps of the recovery drill (``tickarchive.ops.drill``): verify the archive, start a
fresh stack, gather and replay the journal, and compare per-day, per-instrument content
checksums of every tier."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tickarchive.archive import catalog
from tickarchive.archive.journal import check_journal_day, restore_journal_day
from tickarchive.archive.target import Target
from tickarchive.archive.verify import check_month
from tickarchive.errors import TickarchiveError
from tickarchive.months import Month
from tickarchive.ops.errors import DrillError
from tickarchive.ops.lifecycle import ARCHIVED_TABLES
from tickarchive.progress import Progress
from tickarchive.store import migrate
from tickarchive.store.checksum import Checksum, GroupSum
from tickarchive.store.dialect import Dialect
from tickarchive.store.hot import HotStore
from tickarchive.store.rollover import checksum_hot, checksum_warm
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.postgres import PostgresServer
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.warm import WarmStore
from tickarchive.tables import MARKET_TABLES, Table
from tickarchive.venue import Venue

T = TypeVar("T")

ORIGINAL_HOT = "original hot"
ORIGINAL_WARM = "original warm"
REBUILT_WARM = "rebuilt warm (archive)"
REBUILT_HOT = "rebuilt hot (journal)"
COMPARED_TABLES: tuple[Table, ...] = MARKET_TABLES


# ---------------------------------------------------------------------------- comparison (pure)


def translate(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except DrillError:
        raise
    except TickarchiveError as exc:
        raise DrillError(f"{what}: {exc}") from exc
    except OSError as exc:
        raise DrillError(f"{what}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DayCheck:
    """One (table, day): the checksum of every tier holding rows of it, and what differs."""

    table: str
    day: dt.date
    checksums: Mapping[str, Checksum]
    problems: tuple[str, ...]
    rebuild_only: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return max((c.rows for c in self.checksums.values()), default=0)


def _group_text(label: str, g: GroupSum) -> str:
    return f"{label} {g.rows} rows/{g.hex()}"


def compare_day(
    table: str, day: dt.date, original: Mapping[str, Checksum], rebuilt: Mapping[str, Checksum]
) -> DayCheck:
    """Compare every tier against the first original one (or the first rebuilt one, when
    the original holds nothing of the day); name each differing instrument."""
    checksums = {**original, **rebuilt}
    if not checksums:
        return DayCheck(table, day, {}, ())
    ref_label = next(iter(original)) if original else next(iter(rebuilt))
    if original and not rebuilt:
        ref = original[ref_label]
        return DayCheck(
            table, day, checksums,
            (f"{table} {day}: not rebuilt (the original {ref_label} holds {ref.rows} rows); "
             f"instruments: {', '.join(sorted(ref.groups))}",),
        )
    ref = checksums[ref_label]
    problems: list[str] = []
    for label, other in checksums.items():
        if label == ref_label:
            continue
        for key in sorted(set(ref.groups) | set(other.groups)):
            a = ref.groups.get(key, GroupSum(0, 0))
            b = other.groups.get(key, GroupSum(0, 0))
            if a != b:
                problems.append(f"{table} {day} {key}: {_group_text(ref_label, a)}, {_group_text(label, b)}")
    return DayCheck(table, day, checksums, tuple(problems), rebuild_only=not original)


# ---------------------------------------------------------------------------- report


def _month_in(m: Month, lo: dt.datetime, hi: dt.datetime) -> bool:
    first = dt.datetime(m.first_day.year, m.first_day.month, 1, tzinfo=dt.UTC)
    nxt = m.plus(1).first_day
    return first < hi and dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC) > lo


def verify_archive(
    target: Target, journal_target: Target, lo: dt.datetime, hi: dt.datetime, progress: Progress
) -> tuple[list[tuple[Table, Month]], list[dt.date], list[str]]:
    """(archived months to restore, archived journal days, problems) within the bounds."""
    now = dt.datetime.now(dt.UTC)
    index = catalog.rebuild_index(target, now)
    by_name = {t.name: t for t in ARCHIVED_TABLES}
    months = [
        (by_name[e.table], Month.parse(e.month))
        for e in index.months
        if e.table in by_name and _month_in(Month.parse(e.month), lo, hi)
    ]
    jindex = index if journal_target.url == target.url else catalog.rebuild_index(journal_target, now)
    days = sorted(
        d for d in (dt.date.fromisoformat(j.day) for j in jindex.journal_days)
        if lo.date() - dt.timedelta(days=1) <= d < hi.date()
    )
    problems: list[str] = []
    for t, m in months:
        problems.extend(check_month(target, t.name, m, progress=progress).problems)
    for d in days:
        problems.extend(check_journal_day(journal_target, d, progress=progress))
    return months, days, problems


@dataclass(frozen=True, slots=True)
class FreshStack:
    questdb: QuestDBServer
    postgres: PostgresServer

    @property
    def ilp_conf(self) -> str:
        s = self.questdb.settings
        return f"http::addr={s.host}:{s.http_port};"

    def hot(self) -> HotStore:
        s = self.questdb.settings
        return HotStore(migrate.questdb_dsn(s.host, s.pg_port, s.user, s.password), self.questdb.http_url)

    def warm(self) -> WarmStore:
        return WarmStore(self.postgres.dsns.owner, Dialect.POSTGRES)


def _stop_quietly(server: QuestDBServer | PostgresServer) -> None:
    """``down()`` of a server that never started is a no-op; one that cannot be stopped
    must not hide the drill's own outcome."""
    with contextlib.suppress(TickarchiveError):
        server.down()


@contextlib.contextmanager
def fresh_stack(workdir: Path, cache_dir: Path) -> Iterator[FreshStack]:
    """A new QuestDB and PostgreSQL on free loopback ports under ``workdir``, migrated
    (``tickarchive.store.stack.ephemeral``); both are stopped (by the PIDs started here) on
    exit, and die with the calling thread if it ends first."""
    with contextlib.ExitStack() as servers:
        # One after the other, from the calling thread: the servers get SIGTERM when the
        # thread that started them ends (PR_SET_PDEATHSIG is per thread), so never from a
        # short-lived worker thread.
        q = translate("fresh QuestDB", lambda: ephemeral.start_questdb(workdir / "questdb", cache_dir)).server
        servers.callback(_stop_quietly, q)
        p = translate("fresh PostgreSQL", lambda: ephemeral.start_postgres(workdir / "postgres")).server
        servers.callback(_stop_quietly, p)
        yield FreshStack(q, p)


def gather_journal(
    journal_target: Target, days: Sequence[dt.date], local_dir: Path | None, dest: Path
) -> tuple[int, int]:
    """Restore the archived days into ``dest``, then copy the local segments the archive
    does not hold. Returns (archived segments, local segments)."""
    archived = 0
    for d in days:
        restored = translate(f"restore journal {d}", functools.partial(restore_journal_day, journal_target, d, dest))
        archived += len(restored)
    local = 0
    if local_dir is not None:
        from tickarchive.ingest.journal import JournalReader

        have = {p.name for p in dest.iterdir()} if dest.exists() else set()
        dest.mkdir(parents=True, exist_ok=True)
        reader = translate("local journal", lambda: JournalReader(local_dir))
        for seg in translate("local journal", reader.segments):
            if seg.name in have or seg.records == 0:
                continue
            translate(f"copy {seg.path}", functools.partial(shutil.copyfile, seg.path, dest / seg.name))
            local += 1
    return archived, local


def replay_journal(
    journal: Path, frames: Path, conf: str, lo: dt.datetime, hi: dt.datetime, progress: Progress, venue: Venue
) -> dict[str, int]:
    """``journal export`` of ``journal`` into ``frames``, then ``replay --questdb`` of it.
    One day of margin on each side: a frame received just before midnight may carry rows of
    the next day (the exchange timestamp is ``ts``)."""
    from tickarchive.ingest.journal import JournalReader
    from tickarchive.ingest.replay import QuestDBSink, replay_files

    if not journal.exists():
        return {}
    reader = translate("restored journal", lambda: JournalReader(journal))
    start_us = int((lo - dt.timedelta(days=1)).timestamp() * 1_000_000)
    end_us = int((hi + dt.timedelta(days=1)).timestamp() * 1_000_000)

    def _export() -> int:
        with frames.open("wb") as out:
            return reader.export(out, start_us=start_us, end_us=end_us)

    n = translate("journal export", _export)
    if n == 0:
        return {}
    task = progress.task("replay journal", frames.stat().st_size, "bytes")
    seen = [0]

    def on_progress(_path: Path, read: int) -> None:
        task.advance(read - seen[0])
        seen[0] = read

    try:
        stats = translate("replay into the fresh QuestDB",
                           lambda: replay_files([frames], QuestDBSink(conf), venue, on_progress=on_progress))
    finally:
        task.done()
    return stats.rows


def warm_days(warm: WarmStore, table: Table, lo: dt.datetime, hi: dt.datetime) -> set[dt.date]:
    rows = warm._exec(
        f'SELECT DISTINCT (ts AT TIME ZONE \'UTC\')::date FROM "{table.name}" WHERE ts >= %s AND ts < %s',
        (lo, hi), f"{table.name}: days held",
    )
    return {r[0] for r in rows}


def hot_days(hot: HotStore, table: Table, lo: dt.datetime, hi: dt.datetime) -> set[dt.date]:
    return {p.day for p in hot.partitions(table) if p.rows > 0 and lo.date() <= p.day < hi.date()}


def compare_all(
    original_hot: HotStore, original_warm: WarmStore, rebuilt_hot: HotStore, rebuilt_warm: WarmStore,
    lo: dt.datetime, hi: dt.datetime, progress: Progress, tables: Sequence[Table] = COMPARED_TABLES,
) -> list[DayCheck]:
    plan: list[tuple[Table, dt.date, dict[str, bool]]] = []
    for t in tables:
        held = {
            ORIGINAL_HOT: hot_days(original_hot, t, lo, hi),
            ORIGINAL_WARM: warm_days(original_warm, t, lo, hi),
            REBUILT_WARM: warm_days(rebuilt_warm, t, lo, hi),
            REBUILT_HOT: hot_days(rebuilt_hot, t, lo, hi),
        }
        for day in sorted(set().union(*held.values())):
            plan.append((t, day, {label: day in days for label, days in held.items()}))
    readers: dict[str, Callable[[Table, dt.date], Checksum]] = {
        ORIGINAL_HOT: lambda t, d: checksum_hot(original_hot, t, d),
        ORIGINAL_WARM: lambda t, d: checksum_warm(original_warm, t, d),
        REBUILT_WARM: lambda t, d: checksum_warm(rebuilt_warm, t, d),
        REBUILT_HOT: lambda t, d: checksum_hot(rebuilt_hot, t, d),
    }
    out = []
    task = progress.task("compare checksums", len(plan), "table-days")
    try:
        for t, day, holds in plan:
            sums = {label: readers[label](t, day) for label, h in holds.items() if h}
            sums = {label: c for label, c in sums.items() if c.rows}
            original = {k: v for k, v in sums.items() if k in (ORIGINAL_HOT, ORIGINAL_WARM)}
            rebuilt = {k: v for k, v in sums.items() if k in (REBUILT_WARM, REBUILT_HOT)}
            out.append(compare_day(t.name, day, original, rebuilt))
            task.advance(1)
    finally:
        task.done()
    return out
