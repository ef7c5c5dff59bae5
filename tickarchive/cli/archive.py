"""``tickarchive archive ...``.

Sources and sinks: ``export`` reads the warm store (``postgres.dsn`` or the local stack's
reader role) unless ``--from-dir DIR`` names replay output (``DIR/<table>.parquet``);
``restore`` writes to the warm store (writer role, or ``--dsn``). Every command takes
``--target`` (default ``archive.target``) and exits non-zero with a clear message on any
mismatch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from tickarchive.archive import catalog, layout, retention
from tickarchive.archive.errors import ArchiveError, IntegrityError, InvalidArgument
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.rich_progress import RichProgress
from tickarchive.settings import Settings, load_settings
from tickarchive.tables import MARKET_TABLES, Table
from tickarchive.tables import table as table_named

if TYPE_CHECKING:
    from tickarchive.archive.export import ExportOptions
    from tickarchive.archive.iceberg import Lake
    from tickarchive.archive.source import ArchiveSource

CatalogDsnOpt = Annotated[
    str | None, typer.Option("--catalog-dsn", help="PostgreSQL of the Iceberg catalog (default: lake settings)")
]
DEFAULT_TABLES = (*(t.name for t in MARKET_TABLES), "gaps")

TargetOpt = Annotated[str | None, typer.Option("--target", help="file://DIR, a path, or b2://bucket/prefix")]
MonthOpt = Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="month to work on, e.g. 2026-11")]
TablesOpt = Annotated[list[str] | None, typer.Option("--table", help="table (repeatable); default: all market tables")]

err = Console(stderr=True)


def _out() -> Console:
    """stdout; wide when not a terminal, so tables piped to files or tests do not wrap."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _settings() -> Settings:
    return load_settings()


def _target(url: str | None, settings: Settings) -> Target:
    from tickarchive.archive.targets import open_target

    return open_target(url or settings.archive.target)


def _tables(names: list[str] | None) -> list[Table]:
    try:
        return [table_named(n) for n in (names or DEFAULT_TABLES)]
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0])) from None


def _options(settings: Settings, staging: Path | None, file_rows: int | None) -> ExportOptions:
    from tickarchive.archive.export import ExportOptions

    base = ExportOptions.from_settings(settings.archive)
    return ExportOptions(
        zstd_level=base.zstd_level,
        row_group_rows=base.row_group_rows,
        file_rows=file_rows or base.file_rows,
        staging_dir=staging or base.staging_dir or settings.paths.local_dir / "archive-staging",
        keep_superseded=settings.lake.enabled,
    )


def _lake(settings: Settings, target: str | None, dsn: str | None = None) -> Lake:
    from tickarchive.archive.iceberg import Lake
    from tickarchive.archive.lake import LakeConfig

    return Lake(LakeConfig.from_settings(settings, target, dsn))


def _warm_dsns(settings: Settings) -> tuple[str, str]:
    """(reader, writer) DSNs of the warm store."""
    from tickarchive.store.dialect import warm_dsns

    dsns = warm_dsns(settings.postgres)
    return dsns.reader, dsns.writer


def _source(stack: contextlib.ExitStack, settings: Settings, from_dir: Path | None, dsn: str | None) -> ArchiveSource:
    if from_dir is not None:
        from tickarchive.archive.replay_source import ParquetDirSource

        if not from_dir.is_dir():
            raise InvalidArgument(f"--from-dir {from_dir}: not a directory")
        return ParquetDirSource(from_dir)
    from tickarchive.store.warm import WarmStore

    return stack.enter_context(WarmStore.open(dsn or _warm_dsns(settings)[0]))


def _fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _report_problems(exc: IntegrityError) -> None:
    err.print(f"[bold red]{exc.summary}[/]")
    for p in exc.problems:
        err.print(f"  [red]{p}[/]")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The Parquet archive (cold tier): export, verify, restore, ls.", no_args_is_help=True)

    @group.command("ls")
    def ls_cmd(
        target: TargetOpt = None,
        scan: Annotated[bool, typer.Option("--scan", help="rebuild the index from the manifests")] = False,
    ) -> None:
        """List archived months and journal days."""
        settings = _settings()
        tgt = _target(target, settings)
        now = dt.datetime.now(dt.UTC)
        index = catalog.rebuild_index(tgt, now) if scan else catalog.read_index(tgt)
        t = RichTable(title=f"archive at {tgt.url}")
        for col in ("table", "month", "gen", "rows", "files", "size", "created", "verified"):
            t.add_column(col, justify="right" if col in ("rows", "files", "size", "gen") else "left")
        for m in index.months:
            # an empty month (a table without rows that month) is never shown as a verified archive
            verified = "empty" if m.rows == 0 else (
                "yes" if catalog.is_verified(tgt, m.table, Month.parse(m.month)) else "no"
            )
            t.add_row(
                m.table,
                m.month,
                str(m.generation),
                f"{m.rows:,}",
                str(m.files),
                _fmt_bytes(m.bytes),
                m.created_at,
                verified,
            )
        _out().print(t)
        if index.journal_days:
            j = RichTable(title="raw journal")
            for col in ("day", "segments", "original", "stored", "created"):
                j.add_column(col)
            for d in index.journal_days:
                j.add_row(d.day, str(d.segments), _fmt_bytes(d.original_bytes), _fmt_bytes(d.bytes), d.created_at)
            _out().print(j)
        if not index.months and not index.journal_days:
            _out().print("(empty: nothing archived yet; `archive ls --scan` rebuilds the index from manifests)")

    @group.command("export")
    def export_cmd(
        month: MonthOpt,
        table: TablesOpt = None,
        target: TargetOpt = None,
        from_dir: Annotated[
            Path | None, typer.Option("--from-dir", help="replay output DIR/<table>.parquet instead of the warm store")
        ] = None,
        dsn: Annotated[str | None, typer.Option("--dsn", help="warm-store DSN (default: settings)")] = None,
        staging: Annotated[Path | None, typer.Option("--staging-dir", help="where parts are written first")] = None,
        file_rows: Annotated[int | None, typer.Option("--file-rows", help="rows per Parquet file")] = None,
        force: Annotated[bool, typer.Option("--force", help="re-export even if the archive is up to date")] = False,
        note: Annotated[
            str, typer.Option("--note", help="why (kept in the lake's snapshot, e.g. 're-derived: parser fix')")
        ] = "",
    ) -> None:
        """Export a closed month (idempotent: an up-to-date month is left alone).

        With lake.enabled each exported month is registered in the Iceberg lake as a new
        snapshot, and superseded generations are kept for time travel."""
        from tickarchive.archive.export import export_month, refuse_empty_month
        from tickarchive.store import job_runs

        settings = _settings()
        m = Month.parse(month)
        if m >= Month.of(dt.datetime.now(dt.UTC).date()):
            raise InvalidArgument(f"month {m} is not closed yet")
        tgt = _target(target, settings)
        options = _options(settings, staging, file_rows)
        lake = _lake(settings, target) if settings.lake.enabled else None
        with contextlib.ExitStack() as stack, RichProgress() as progress:
            stack.enter_context(job_runs.recorded(_warm_dsns(settings)[1], "archive_export"))
            source = _source(stack, settings, from_dir, dsn)
            tables = _tables(table)
            refuse_empty_month(source, tables, m)
            for t in tables:
                r = export_month(source, tgt, t, m, options, progress=progress, force=force)
                mf = r.manifest
                if mf.total_rows == 0:
                    progress.note(f"{r.table} {m}: empty (no rows that month), recorded as empty")
                    continue
                if lake is not None:
                    reg = lake.register(mf, note)
                    progress.note(f"{r.table} {m}: lake {reg.status} (snapshot {reg.snapshot_id})")
                progress.note(
                    f"{r.table} {m}: {r.status}, {mf.total_rows:,} rows in {len(mf.files)} files "
                    f"({_fmt_bytes(mf.total_bytes)}; uploaded {r.uploaded}, skipped {r.skipped})"
                )

    @group.command("verify")
    def verify_cmd(
        month: Annotated[str | None, typer.Option("--month", help="only this month (YYYY-MM)")] = None,
        table: TablesOpt = None,
        target: TargetOpt = None,
    ) -> None:
        """Re-read every archived file and check hashes, row counts and ts ranges."""
        from tickarchive.store import job_runs

        settings = _settings()
        with job_runs.recorded(_warm_dsns(settings)[1], "archive_verify"):
            _verify(settings, month, table, target)

    def _verify(settings: Settings, month: str | None, table: list[str] | None, target: str | None) -> None:
        from tickarchive.archive.verify import check_month, forget_verified, record_verified

        tgt = _target(target, settings)
        index = catalog.rebuild_index(tgt, dt.datetime.now(dt.UTC))
        wanted_tables = set(table or [])
        selection = [
            (e.table, Month.parse(e.month))
            for e in index.months
            if (month is None or e.month == str(Month.parse(month))) and (not wanted_tables or e.table in wanted_tables)
        ]
        if month is not None and table:
            selection = [(t, Month.parse(month)) for t in table]  # a missing manifest is a failure
        if not selection:
            raise ArchiveError(f"nothing archived at {tgt.url} matches the selection")
        problems: list[str] = []
        with RichProgress() as progress:
            for t_name, m in selection:
                result = check_month(tgt, t_name, m, progress=progress)
                if result.ok:
                    record_verified(tgt, result)
                    if result.rows == 0:
                        progress.note(f"{t_name} {m}: empty (the month had no rows; nothing to verify)")
                    else:
                        progress.note(f"{t_name} {m}: OK ({result.files} files, {result.rows:,} rows)")
                else:
                    forget_verified(tgt, t_name, m)
                    problems.extend(result.problems)
                    progress.note(f"[red]{t_name} {m}: FAILED[/]")
        if problems:
            _report_problems(IntegrityError(f"verify failed at {tgt.url}", problems))
            raise typer.Exit(1)

    @group.command("restore")
    def restore_cmd(
        month: MonthOpt,
        table: TablesOpt = None,
        target: TargetOpt = None,
        dsn: Annotated[
            str | None, typer.Option("--dsn", help="warm-store DSN (default: settings, writer role)")
        ] = None,
    ) -> None:
        """Load an archived month back into the warm store (idempotent)."""
        from tickarchive.archive.restore import restore_month
        from tickarchive.store.warm import WarmStore

        settings = _settings()
        m = Month.parse(month)
        tgt = _target(target, settings)
        with WarmStore.open(dsn or _warm_dsns(settings)[1]) as sink, RichProgress() as progress:
            for t in _tables(table):
                if catalog.read_month_manifest(tgt, t.name, m) is None:
                    if table:
                        raise ArchiveError(f"{t.name} {m} is not archived at {tgt.url}")
                    continue
                r = restore_month(tgt, sink, t, m, progress=progress)
                progress.note(f"{t.name} {m}: read {r.rows_read:,} rows, inserted {r.rows_inserted:,} new")

    @group.command("journal")
    def journal_cmd(
        segments: Annotated[
            list[Path] | None,
            typer.Argument(help="segment files of --day; default: the journal's sealed, acknowledged segments"),
        ] = None,
        day: Annotated[str | None, typer.Option("--day", help="UTC day, YYYY-MM-DD")] = None,
        journal_dir: Annotated[
            Path | None, typer.Option("--journal-dir", help="journal directory (default: paths.journal_dir)")
        ] = None,
        target: TargetOpt = None,
    ) -> None:
        """Archive raw journal segments (the journal archive format) per UTC day with their manifest."""
        from tickarchive.archive.journal import archive_journal_day, segments_by_day

        settings = _settings()
        tgt = _target(target, settings)
        if segments:
            if day is None:
                raise InvalidArgument("segment files need --day")
            groups = {layout.parse_day(day): list(segments)}
        else:
            from tickarchive.ingest.journal import JournalReader

            reader = JournalReader(journal_dir or settings.paths.journal_dir)
            ready = [(s.path, s.first_ts_us) for s in reader.segments() if s.sealed and s.acked]
            groups = segments_by_day(ready)
            if day is not None:
                wanted = layout.parse_day(day)
                groups = {d: p for d, p in groups.items() if d == wanted}
            if not groups:
                _out().print("no sealed, acknowledged journal segments to archive")
                return
        with RichProgress() as progress:
            for d, paths in groups.items():
                level = settings.archive.journal_zstd_level
                r = archive_journal_day(tgt, d, paths, zstd_level=level, progress=progress)
                m = r.manifest
                progress.note(
                    f"journal {d}: {r.status}, {len(m.segments)} segments, {_fmt_bytes(m.total_original_bytes)} -> "
                    f"{_fmt_bytes(m.total_bytes)} (uploaded {r.uploaded})"
                )

    @group.command("verify-journal")
    def verify_journal_cmd(
        day: Annotated[str | None, typer.Option("--day", help="only this day (YYYY-MM-DD)")] = None,
        target: TargetOpt = None,
    ) -> None:
        """Re-read archived journal segments: hashes of the stored and the decompressed bytes."""
        from tickarchive.archive.journal import check_journal_day

        settings = _settings()
        tgt = _target(target, settings)
        index = catalog.rebuild_index(tgt, dt.datetime.now(dt.UTC))
        days = [layout.parse_day(day)] if day else [dt.date.fromisoformat(d.day) for d in index.journal_days]
        if not days:
            raise ArchiveError(f"no journal days archived at {tgt.url}")
        problems: list[str] = []
        with RichProgress() as progress:
            for d in days:
                found = check_journal_day(tgt, d, progress=progress)
                problems.extend(found)
                progress.note(f"journal {d}: {'OK' if not found else '[red]FAILED[/]'}")
        if problems:
            _report_problems(IntegrityError(f"journal verify failed at {tgt.url}", problems))
            raise typer.Exit(1)

    @group.command("restore-journal")
    def restore_journal_cmd(
        day: Annotated[str, typer.Option("--day", metavar="YYYY-MM-DD", help="UTC day")],
        dest: Annotated[
            Path, typer.Option("--dir", metavar="DIR", help="directory to write the day's journal segments into")
        ],
        target: TargetOpt = None,
    ) -> None:
        """Decode an archived journal day back into its segments, each checked byte for byte."""
        from tickarchive.archive.journal import restore_journal_day

        settings = _settings()
        tgt = _target(target, settings)
        paths = restore_journal_day(tgt, layout.parse_day(day), dest)
        total = sum(p.stat().st_size for p in paths)
        _out().print(
            f"journal {day}: {len(paths)} segments restored into {dest} ({_fmt_bytes(total)}, SHA-256 checked)"
        )

    @group.command("retention")
    def retention_cmd(
        target: TargetOpt = None,
        today: Annotated[str | None, typer.Option("--today", help="decide as of this day (default: today)")] = None,
    ) -> None:
        """Show which archived months the warm tier may drop (older than the retention and verified)."""
        settings = _settings()
        tgt = _target(target, settings)
        index = catalog.read_index(tgt)
        pairs = [(e.table, Month.parse(e.month)) for e in index.months]
        when = layout.parse_day(today) if today else dt.datetime.now(dt.UTC).date()
        decisions = retention.decide(
            pairs, retention.verified_pairs(tgt, pairs), when, settings.lifecycle.warm_retention_months
        )
        for d in decisions:
            _out().print(f"{d.table:<22} {d.month}  {d.verdict.value}")

    @group.command("register")
    def register_cmd(
        table: TablesOpt = None,
        month: Annotated[str | None, typer.Option("--month", help="only this month (YYYY-MM)")] = None,
        target: TargetOpt = None,
        note: Annotated[str, typer.Option("--note", help="kept in the snapshots' summaries")] = "",
        dsn: CatalogDsnOpt = None,
    ) -> None:
        """Register archived months as Iceberg tables (idempotent; a new generation = a new snapshot)."""
        settings = _settings()
        tgt = _target(target, settings)
        lake = _lake(settings, target, dsn)
        index = catalog.rebuild_index(tgt, dt.datetime.now(dt.UTC))
        wanted = set(table or [])
        picked = [e for e in index.months if (not wanted or e.table in wanted) and (month is None or e.month == month)]
        if not picked:
            raise ArchiveError(f"nothing archived at {tgt.url} matches the selection")
        for e in picked:
            m = catalog.read_month_manifest(tgt, e.table, Month.parse(e.month))
            if m is None:
                continue
            reg = lake.register(m, note)
            _out().print(f"{reg.table:<13} {reg.month}  {reg.status:<10} snapshot {reg.snapshot_id}  "
                         f"{reg.rows:,} rows in {reg.files} files")

    @group.command("versions")
    def versions_cmd(
        table: TablesOpt = None,
        month: Annotated[str | None, typer.Option("--month", help="only snapshots registering this month")] = None,
        target: TargetOpt = None,
        dsn: CatalogDsnOpt = None,
    ) -> None:
        """List the lake's versions: every Iceberg snapshot, which month and generation it registered."""
        settings = _settings()
        lake = _lake(settings, target, dsn)
        names = table or lake.tables()
        t = RichTable(title=f"Iceberg snapshots in {settings.lake.catalog_name}.{settings.lake.namespace}")
        for col in ("table", "snapshot", "committed (UTC)", "operation", "month", "gen", "+rows", "-rows", "rows",
                    "manifest", "note"):
            t.add_column(col, justify="right" if col in ("gen", "+rows", "-rows", "rows") else "left")
        for name in names:
            for v in lake.versions(name, str(Month.parse(month)) if month else None):
                t.add_row(
                    name,
                    f"{v.snapshot_id}{' *' if v.current else ''}",
                    v.committed_at.strftime("%Y-%m-%d %H:%M:%S"),
                    v.operation,
                    v.month or "",
                    "" if v.generation is None else str(v.generation),
                    f"{v.added_rows:,}",
                    f"{v.deleted_rows:,}",
                    f"{v.total_rows:,}",
                    (v.manifest_sha256 or "")[:12],
                    v.note,
                )
        _out().print(t)
        _out().print("* = current snapshot; older ones stay readable (Spark: VERSION AS OF <snapshot>)")

    app.add_typer(group, name="archive")

