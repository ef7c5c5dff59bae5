"""``tickarchive drill``: the recovery drill (server loss, rehearsed).

Rebuilds a FRESH stack — a new QuestDB and a new PostgreSQL warm store on free loopback
ports under a work directory, never touching the running one — from what survives a
server loss, then proves the rebuild holds the same rows as the original:

1. **verify archive**: every archived (table, month) and journal day is re-read and
   checked against its manifest (SHA-256, rows); a damaged file stops the drill here,
   named, before anything starts;
2. **start fresh stack**: QuestDB + PostgreSQL (throw-away servers that die with this
   process), migrated;
3. **restore archive**: every archived month of the archived tables into the fresh warm
   store (``tickarchive.ops.lifecycle.restore_to_warm``, what ``archive restore`` does);
4. **restore journal**: every archived journal day decompressed into ``WORKDIR/journal``
   (``archive.journal.restore_journal_day``), plus each local journal segment the archive
   does not hold yet (the days after the last archived one);
5. **replay journal**: ``journal export`` of that directory, then ``replay --questdb`` of
   the export into the fresh QuestDB (the runbook's commands, same code);
6. **compare**: per market table, per UTC day in ``[--since, --until)``, per instrument
   (the table's ``segment_by``): the content checksum of ``store.checksum`` (the one the
   rollover ledger stores) of every tier holding the day — original hot, original warm,
   rebuilt warm (from the archive), rebuilt hot (from the journal) — must be equal, and
   a day of the original must be rebuilt by at least one of them.

The ``gaps`` table is restored but not compared: replay re-derives only the sequence
gaps visible in the frames (connection ``replay``); session gaps are not in the frames.
A day only the rebuild holds (the original dropped it after its warm retention) is
listed, not a failure. ``--until`` defaults to today (UTC): today's rows are still
arriving, so only closed days compare.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from tickarchive import venues
from tickarchive.archive import catalog
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.journal import check_journal_day, restore_journal_day
from tickarchive.archive.target import Target
from tickarchive.archive.targets import open_target
from tickarchive.archive.verify import check_month
from tickarchive.errors import TickarchiveError
from tickarchive.months import Month
from tickarchive.ops.errors import DrillError
from tickarchive.ops.lifecycle import ARCHIVED_TABLES
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.settings import Settings
from tickarchive.store import migrate
from tickarchive.store.checksum import Checksum, GroupSum
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import StoreError
from tickarchive.store.hot import HotStore, open_hot
from tickarchive.store.rollover import checksum_hot, checksum_warm
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.postgres import PostgresServer
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.store.warm import WarmStore, open_warm
from tickarchive.tables import MARKET_TABLES, Table
from tickarchive.venue import Venue

T = TypeVar("T")

ORIGINAL_HOT = "original hot"
ORIGINAL_WARM = "original warm"
REBUILT_WARM = "rebuilt warm (archive)"
REBUILT_HOT = "rebuilt hot (journal)"
COMPARED_TABLES: tuple[Table, ...] = MARKET_TABLES


# ---------------------------------------------------------------------------- comparison (pure)


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


@dataclass(frozen=True, slots=True)
class StepTime:
    name: str
    seconds: float
    detail: str


@dataclass(slots=True)
class DrillReport:
    steps: list[StepTime] = field(default_factory=list)
    checks: list[DayCheck] = field(default_factory=list)
    archive_problems: list[str] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def total_s(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def mismatches(self) -> list[str]:
        return [*self.archive_problems, *(p for c in self.checks for p in c.problems)]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def step(self, name: str, progress: Progress = NO_PROGRESS) -> _StepTimer:
        progress.note(f"drill: {name} ...")
        return _StepTimer(self, name)


class _StepTimer:
    def __init__(self, report: DrillReport, name: str) -> None:
        self.report = report
        self.name = name
        self.detail = ""
        self._t0 = 0.0

    def __enter__(self) -> _StepTimer:
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.report.steps.append(StepTime(self.name, time.monotonic() - self._t0, self.detail))


# ---------------------------------------------------------------------------- the drill


@dataclass(frozen=True, slots=True)
class DrillOptions:
    archive: str
    """Target of the Parquet archive (file path, file://DIR or b2://bucket/prefix)."""
    journal_archive: str | None = None
    """Target of the raw journal archive; default: the same target as ``archive``."""
    journal_dir: Path | None = None
    """The local journal (segments newer than the archived days); ``None``: none."""
    workdir: Path | None = None
    """Where the fresh stack lives; default: a temporary directory removed afterwards."""
    since: dt.date | None = None
    until: dt.date | None = None
    """Compare days in ``[since, until)``; ``until`` defaults to today (UTC)."""
    keep: bool = False
    """Leave ``workdir`` (servers stopped) for inspection."""


def _bounds(o: DrillOptions) -> tuple[dt.datetime, dt.datetime]:
    since = o.since or dt.date(1970, 1, 2)
    until = o.until or dt.datetime.now(dt.UTC).date()
    return (dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC),
            dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC))


def _translate(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except DrillError:
        raise
    except TickarchiveError as exc:
        raise DrillError(f"{what}: {exc}") from exc
    except OSError as exc:
        raise DrillError(f"{what}: {exc}") from exc


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
        q = _translate("fresh QuestDB", lambda: ephemeral.start_questdb(workdir / "questdb", cache_dir)).server
        servers.callback(_stop_quietly, q)
        p = _translate("fresh PostgreSQL", lambda: ephemeral.start_postgres(workdir / "postgres")).server
        servers.callback(_stop_quietly, p)
        yield FreshStack(q, p)


def gather_journal(
    journal_target: Target, days: Sequence[dt.date], local_dir: Path | None, dest: Path
) -> tuple[int, int]:
    """Restore the archived days into ``dest``, then copy the local segments the archive
    does not hold. Returns (archived segments, local segments)."""
    archived = 0
    for d in days:
        restored = _translate(f"restore journal {d}", functools.partial(restore_journal_day, journal_target, d, dest))
        archived += len(restored)
    local = 0
    if local_dir is not None:
        from tickarchive.ingest.journal import JournalReader

        have = {p.name for p in dest.iterdir()} if dest.exists() else set()
        dest.mkdir(parents=True, exist_ok=True)
        reader = _translate("local journal", lambda: JournalReader(local_dir))
        for seg in _translate("local journal", reader.segments):
            if seg.name in have or seg.records == 0:
                continue
            _translate(f"copy {seg.path}", functools.partial(shutil.copyfile, seg.path, dest / seg.name))
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
    reader = _translate("restored journal", lambda: JournalReader(journal))
    start_us = int((lo - dt.timedelta(days=1)).timestamp() * 1_000_000)
    end_us = int((hi + dt.timedelta(days=1)).timestamp() * 1_000_000)

    def _export() -> int:
        with frames.open("wb") as out:
            return reader.export(out, start_us=start_us, end_us=end_us)

    n = _translate("journal export", _export)
    if n == 0:
        return {}
    task = progress.task("replay journal", frames.stat().st_size, "bytes")
    seen = [0]

    def on_progress(_path: Path, read: int) -> None:
        task.advance(read - seen[0])
        seen[0] = read

    try:
        stats = _translate("replay into the fresh QuestDB",
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


def run_drill(
    settings: Settings, options: DrillOptions, progress: Progress = NO_PROGRESS, fresh: FreshStack | None = None
) -> DrillReport:
    """The whole drill against the original stack of ``settings``; see the module doc.
    ``fresh``: an already running fresh stack to rebuild into (tests running the drill
    twice: restore and replay are idempotent); by default one is started and stopped here."""
    report = DrillReport()
    lo, hi = _bounds(options)
    if lo >= hi:
        raise DrillError(f"nothing to compare: --since {lo.date()} is not before --until {hi.date()}")
    target = _translate("archive", lambda: open_target(options.archive))
    jtarget = _translate("journal archive", lambda: open_target(options.journal_archive or options.archive))
    if options.journal_dir is not None and not options.journal_dir.is_dir():
        raise DrillError(f"local journal {options.journal_dir}: not a directory")

    with report.step("verify archive", progress) as s:
        months, days, problems = _translate("verify archive", lambda: verify_archive(target, jtarget, lo, hi, progress))
        s.detail = f"{len(months)} table-months, {len(days)} journal days"
    if problems:
        report.archive_problems.extend(problems)
        return report

    own = options.workdir is None
    if options.workdir is not None and options.workdir.exists() and any(options.workdir.iterdir()):
        raise DrillError(f"--workdir {options.workdir}: not empty (a drill rebuilds into an empty directory)")
    try:
        workdir = Path(tempfile.mkdtemp(prefix="tickarchive-drill-")) if own else Path(options.workdir or ".")
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)  # the PostgreSQL server runs as its own user when we are root
    except OSError as exc:
        raise DrillError(f"work directory: {exc}") from exc
    report.workdir = workdir
    try:
        with contextlib.ExitStack() as stack:
            with report.step("start fresh stack", progress) as s:
                if fresh is None:
                    fresh = stack.enter_context(fresh_stack(workdir, settings.paths.cache_dir))
                s.detail = f"QuestDB {fresh.questdb.address}; PostgreSQL {fresh.postgres.address}"
            rebuilt_warm = stack.enter_context(_translate("fresh warm store", fresh.warm))
            with report.step("restore archive", progress) as s:
                rows = 0
                from tickarchive.ops.lifecycle import restore_to_warm

                for t, m in months:
                    r = _translate(f"restore {t.name} {m}", functools.partial(
                        restore_to_warm, target, rebuilt_warm, t, m, progress=progress))
                    rows += r.rows_inserted
                s.detail = f"{rows:,} rows from {len(months)} table-months"
            with report.step("restore journal", progress) as s:
                archived, local = gather_journal(jtarget, days, options.journal_dir, workdir / "journal")
                s.detail = f"{archived} archived segments ({len(days)} days), {local} local segments"
            with report.step("replay journal", progress) as s:
                replayed = replay_journal(workdir / "journal", workdir / "journal.frames", fresh.ilp_conf, lo, hi,
                                          progress, venues.load(settings))
                rebuilt_hot = stack.enter_context(_translate("fresh QuestDB", fresh.hot))
                _translate("fresh QuestDB: apply WAL", lambda: rebuilt_hot.wait_applied(timeout_s=300))
                s.detail = f"{sum(replayed.values()):,} rows"
            with report.step("compare checksums", progress) as s:
                original_hot = stack.enter_context(_translate("original QuestDB", lambda: open_hot(settings)))
                original_warm = stack.enter_context(_translate("original warm store", lambda: open_warm(settings)))
                report.checks = _translate("compare", lambda: compare_all(
                    original_hot, original_warm, rebuilt_hot, rebuilt_warm, lo, hi, progress))
                bad = sum(not c.ok for c in report.checks)
                s.detail = f"{len(report.checks)} table-days, {bad} mismatching"
    except StoreError as exc:
        raise DrillError(str(exc)) from exc
    except ArchiveError as exc:
        raise DrillError(str(exc)) from exc
    finally:
        if own and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


# ---------------------------------------------------------------------------- CLI


def _day(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DrillError(f"{what} {text!r}: expected YYYY-MM-DD") from None


def print_report(report: DrillReport, console: object) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    assert isinstance(console, Console)
    steps = RichTable(title="recovery drill: time per step")
    for col in ("step", "seconds", "detail"):
        steps.add_column(col, justify="right" if col == "seconds" else "left")
    for st in report.steps:
        steps.add_row(st.name, f"{st.seconds:.1f}", st.detail)
    steps.add_row("[bold]total[/]", f"[bold]{report.total_s:.1f}[/]", "")
    console.print(steps)
    if report.checks:
        per = RichTable(title="checksums per table (days in range)")
        for col in ("table", "days", "rows", "identical", "mismatching", "rebuild only", "tiers compared"):
            per.add_column(col, justify="left" if col in ("table", "tiers compared") else "right")
        for name in dict.fromkeys(c.table for c in report.checks):
            cs = [c for c in report.checks if c.table == name]
            tiers = sorted({label for c in cs for label in c.checksums})
            per.add_row(name, str(len(cs)), f"{sum(c.rows for c in cs):,}", str(sum(c.ok for c in cs)),
                        str(sum(not c.ok for c in cs)), str(sum(c.rebuild_only for c in cs)), ", ".join(tiers))
        console.print(per)
    if report.ok:
        console.print(f"[green]drill OK[/]: {len(report.checks)} table-days identical; total {report.total_s:.1f} s")


def register(app: typer.Typer) -> None:
    @app.command("drill")
    def drill_cmd(
        archive: Annotated[str | None, typer.Option(
            "--archive", help="Parquet archive target (default: archive.target)")] = None,
        journal_archive: Annotated[str | None, typer.Option(
            "--journal-archive", help="raw journal archive target (default: the --archive target)")] = None,
        journal_dir: Annotated[Path | None, typer.Option(
            "--journal-dir",
            help="local journal with the segments not archived yet (default: paths.journal_dir)")] = None,
        no_local_journal: Annotated[bool, typer.Option(
            "--no-local-journal", help="use only the archived journal (a lost server's local disk)")] = False,
        workdir: Annotated[Path | None, typer.Option(
            "--workdir", help="empty dir for the fresh stack, kept (default: a temporary dir, removed)")] = None,
        since: Annotated[str | None, typer.Option("--since", help="first day compared, YYYY-MM-DD")] = None,
        until: Annotated[str | None, typer.Option(
            "--until", help="day after the last one compared (default: today UTC)")] = None,
        keep: Annotated[bool, typer.Option("--keep", help="keep the temporary work dir")] = False,
    ) -> None:
        """Rebuild a fresh stack from the archive + journal and compare checksums with the original."""
        from rich.console import Console

        from tickarchive.rich_progress import RichProgress
        from tickarchive.settings import load_settings

        settings = load_settings()
        jdir: Path | None = None
        if not no_local_journal:
            jdir = journal_dir or settings.paths.journal_dir
            if journal_dir is None and not jdir.is_dir():
                jdir = None  # no local journal on this machine
        options = DrillOptions(
            archive=archive or settings.archive.target, journal_archive=journal_archive, journal_dir=jdir,
            workdir=workdir, since=_day(since, "--since"), until=_day(until, "--until"), keep=keep,
        )
        out = Console() if Console().is_terminal else Console(width=200)
        err = Console(stderr=True)
        with RichProgress(err) as progress:
            report = run_drill(settings, options, progress)
        print_report(report, out)
        if not report.ok:
            err.print(f"[bold red]drill FAILED: {len(report.mismatches)} mismatch(es)[/]")
            for m in report.mismatches:
                err.print(f"  [red]{m}[/]", soft_wrap=True)
            raise typer.Exit(1)
