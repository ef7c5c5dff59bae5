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
from dataclasses import dataclass, field
from pathlib import Path

from tickarchive import venues
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.targets import open_target
from tickarchive.ops.drill_steps import (
    DayCheck,
    FreshStack,
    compare_all,
    fresh_stack,
    gather_journal,
    replay_journal,
    translate,
    verify_archive,
)
from tickarchive.ops.errors import DrillError
from tickarchive.progress import NO_PROGRESS, Progress
from tickarchive.settings import Settings
from tickarchive.store.errors import StoreError
from tickarchive.store.hot import open_hot
from tickarchive.store.warm import open_warm


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
    target = translate("archive", lambda: open_target(options.archive))
    jtarget = translate("journal archive", lambda: open_target(options.journal_archive or options.archive))
    if options.journal_dir is not None and not options.journal_dir.is_dir():
        raise DrillError(f"local journal {options.journal_dir}: not a directory")

    with report.step("verify archive", progress) as s:
        months, days, problems = translate("verify archive", lambda: verify_archive(target, jtarget, lo, hi, progress))
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
            rebuilt_warm = stack.enter_context(translate("fresh warm store", fresh.warm))
            with report.step("restore archive", progress) as s:
                rows = 0
                from tickarchive.ops.lifecycle import restore_to_warm

                for t, m in months:
                    r = translate(f"restore {t.name} {m}", functools.partial(
                        restore_to_warm, target, rebuilt_warm, t, m, progress=progress))
                    rows += r.rows_inserted
                s.detail = f"{rows:,} rows from {len(months)} table-months"
            with report.step("restore journal", progress) as s:
                archived, local = gather_journal(jtarget, days, options.journal_dir, workdir / "journal")
                s.detail = f"{archived} archived segments ({len(days)} days), {local} local segments"
            with report.step("replay journal", progress) as s:
                replayed = replay_journal(workdir / "journal", workdir / "journal.frames", fresh.ilp_conf, lo, hi,
                                          progress, venues.load(settings))
                rebuilt_hot = stack.enter_context(translate("fresh QuestDB", fresh.hot))
                translate("fresh QuestDB: apply WAL", lambda: rebuilt_hot.wait_applied(timeout_s=300))
                s.detail = f"{sum(replayed.values()):,} rows"
            with report.step("compare checksums", progress) as s:
                original_hot = stack.enter_context(translate("original QuestDB", lambda: open_hot(settings)))
                original_warm = stack.enter_context(translate("original warm store", lambda: open_warm(settings)))
                report.checks = translate("compare", lambda: compare_all(
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
