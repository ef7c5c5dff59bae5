"""``tickarchive journal ls|verify|export`` and ``tickarchive replay``."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tickarchive.ingest.errors import IngestError, JournalError

_console = Console()


def _journal_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    from tickarchive.settings import load_settings

    return load_settings().paths.journal_dir


def _time_us(text: str | None, option: str) -> int | None:
    """Unix seconds (``1700000000.5``) or ISO-8601 (naive = UTC) → µs."""
    if text is None:
        return None
    try:
        return round(float(text) * 1_000_000)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise IngestError(f"{option}: {text!r} is neither unix seconds nor an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def _iso(ts_us: int | None) -> str:
    if ts_us is None:
        return "-"
    return datetime.fromtimestamp(ts_us / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


DirOption = Annotated[Path | None, typer.Option("--dir", help="journal directory (default: paths.local_dir/journal)")]


def journal_ls(directory: DirOption = None) -> None:
    """List journal segments: records, seq and time range, size, sealed and acknowledged."""
    from tickarchive.ingest.journal import JournalReader

    reader = JournalReader(_journal_dir(directory))
    segs = reader.segments()
    table = Table(title=f"journal {reader.directory} (acked seq {reader.acked_seq})")
    for col in ("segment", "records", "first seq", "last seq", "first recv", "last recv", "bytes", "sealed", "acked"):
        table.add_column(col, justify="right" if col in ("records", "bytes", "first seq", "last seq") else "left")
    for s in segs:
        table.add_row(
            s.name,
            str(s.records),
            str(s.first_seq if s.first_seq is not None else "-"),
            str(s.last_seq if s.last_seq is not None else "-"),
            _iso(s.first_ts_us),
            _iso(s.last_ts_us),
            str(s.bytes),
            "yes" if s.sealed else "open",
            "yes" if s.acked else "no",
        )
    _console.print(table)
    _console.print(f"{len(segs)} segments, {sum(s.records for s in segs)} records, {sum(s.bytes for s in segs)} bytes")


def journal_verify(directory: DirOption = None) -> None:
    """Check the CRC and sequence of every record of every segment (exit 1 on damage)."""
    from tickarchive.ingest.journal import JournalReader

    report = JournalReader(_journal_dir(directory)).verify()
    for p in report.problems:
        typer.secho(f"problem: {p}", err=True, fg=typer.colors.RED)
    typer.echo(f"{report.segments} segments, {report.records} records, {report.bytes} bytes checked")
    if not report.ok:
        raise JournalError(f"journal verify found {len(report.problems)} problem(s)")
    typer.echo("ok")


def journal_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="FILE", help="output file in the replay format ('-' = stdout)")
    ],
    start: Annotated[str | None, typer.Option(help="first receive time (unix seconds or ISO-8601, UTC)")] = None,
    end: Annotated[str | None, typer.Option(help="end receive time, exclusive")] = None,
    connection: Annotated[str | None, typer.Option(help="only this connection id")] = None,
    directory: DirOption = None,
) -> None:
    """Export raw frames as `<unix seconds>: <frame>` lines (the replay format)."""
    from tickarchive.ingest.journal import JournalReader

    reader = JournalReader(_journal_dir(directory))
    start_us, end_us = _time_us(start, "--start"), _time_us(end, "--end")
    if str(out) == "-":
        n = reader.export(sys.stdout.buffer, start_us, end_us, connection)
        sys.stdout.flush()
    else:
        tmp = out.with_name(out.name + ".partial")
        try:
            with tmp.open("wb") as f:
                n = reader.export(f, start_us, end_us, connection)
            tmp.replace(out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise JournalError(f"cannot write {out}: {exc.strerror}") from exc
    typer.echo(f"exported {n} frames", err=True)


def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help="journal segments (*.tjl), journal archive files (*.tjz), replay-format files (.zst too)",
        ),
    ],
    to: Annotated[Path | None, typer.Option("--to", help="output directory: DIR/<table>.parquet")] = None,
    questdb: Annotated[bool, typer.Option("--questdb", help="write into QuestDB over ILP/HTTP instead")] = False,
    questdb_conf: Annotated[
        str | None, typer.Option(help="ILP client conf (default: http::addr=<questdb.host>:<http_port>;)")
    ] = None,
    accept_damage: Annotated[
        bool,
        typer.Option(
            "--accept-damage",
            help="exit 0 even when damaged input was skipped (unreadable lines, records failing their CRC)",
        ),
    ] = False,
) -> None:
    """Rebuild every table from raw frames with the collector's own parsers.

    Parquet output is sorted like the archive and deduplicated like QuestDB (the row read
    last wins). Damaged input is skipped and listed; it makes the exit status 3 unless
    --accept-damage.
    """
    gc_was_on = gc.isenabled()
    gc.disable()  # the imports make ~10^5 objects and no garbage; replay_files keeps it off
    try:
        from tickarchive.arrow_probe import skip_pandas_probe

        skip_pandas_probe()
        from tickarchive import venues
        from tickarchive.ingest.replay import ParquetSink, QuestDBSink, Sink, replay_files
        from tickarchive.settings import load_settings

        settings = load_settings()
        venue = venues.load(settings)
    finally:
        if gc_was_on:
            gc.enable()

    for f in files:
        if not f.is_file():
            raise IngestError(f"{f}: no such file")
    sink: Sink
    if questdb:
        if questdb_conf is None:
            q = settings.questdb
            questdb_conf = f"http::addr={q.host}:{q.http_port};"
        sink = QuestDBSink(questdb_conf)
        target = questdb_conf
    else:
        if to is None:
            raise IngestError("replay needs --to DIR (or --questdb)")
        sink = ParquetSink(to)
        target = str(to)
    total = sum(f.stat().st_size for f in files)
    with Progress(
        TextColumn("[bold]replay[/]"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=total < 8 * 1024 * 1024,
    ) as progress:
        task = progress.add_task("replay", total=total)
        done: dict[Path, int] = {}

        def on_progress(path: Path, read: int) -> None:
            done[path] = read
            progress.update(task, completed=sum(done.values()))

        stats = replay_files(files, sink, venue, on_progress)
    typer.echo(f"replayed {stats.frames} frames from {stats.files} file(s) into {target}")
    for name, n in stats.rows.items():
        dup = stats.duplicates.get(name, 0)
        typer.echo(f"  {name}: {n} rows" + (f" ({dup} duplicate key(s) replaced by a later row)" if dup else ""))
    for key, n in stats.malformed.items():
        sample = stats.malformed_samples[key][:120].decode("utf-8", "replace")
        typer.secho(f"  malformed {key}: {n} frame(s), e.g. {sample}", fg=typer.colors.YELLOW)
    if stats.damaged:
        for line in stats.damaged_files:
            typer.secho(f"  damaged input skipped: {line}", fg=typer.colors.RED, err=True)
        if not accept_damage:
            typer.secho(
                f"replay skipped damaged input in {len(stats.damaged_files)} file(s) (listed above); the output "
                "holds everything else. Exit status 3; rerun with --accept-damage to accept it.",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(DAMAGE_EXIT)
        typer.secho("  damaged input accepted (--accept-damage)", fg=typer.colors.YELLOW, err=True)


DAMAGE_EXIT = 3
"""Exit status of ``replay`` when it skipped damaged input without ``--accept-damage``."""


def quarantine_ls(directory: DirOption = None) -> None:
    """List what the collector set aside: journal damage, malformed frames, rows QuestDB refused."""
    from tickarchive.ingest.quarantine import quarantine_dir, read_items

    qdir = quarantine_dir(_journal_dir(directory))
    items = list(read_items(qdir))
    if not items:
        typer.echo(f"quarantine {qdir}: empty")
        return
    table = Table(title=f"quarantine {qdir} ({len(items)} items)")
    for col in ("n", "at (UTC)", "reason", "seqs", "bytes", "kept", "detail"):
        table.add_column(col, overflow="fold")
    for i in items:
        seqs = "-" if i.seqs is None else (str(i.seqs[0]) if i.seqs[0] == i.seqs[1] else f"{i.seqs[0]}..{i.seqs[1]}")
        table.add_row(str(i.n), _iso(i.at_us), i.reason, seqs, str(i.size), "yes" if i.kept else "no", i.detail)
    _console.print(table)
    by_reason: dict[str, int] = {}
    for i in items:
        by_reason[i.reason] = by_reason.get(i.reason, 0) + 1
    typer.echo("by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())))
    typer.echo(f"the bytes of item N are {qdir}/N.bin (raw journal bytes, or frames in the replay format)")


def journal_prune(
    target: Annotated[
        str | None, typer.Option("--target", help="the archive: file://DIR, a path or b2://bucket/prefix")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be deleted, delete nothing")] = False,
    directory: DirOption = None,
) -> None:
    """Delete the oldest journal segments that are acknowledged, archived, verified against
    the archive and past local retention (journal.retain_days / journal.retain_max_bytes).
    Exit 1 when a segment that should have gone by now is not in the archive."""
    from tickarchive.archive.targets import open_target
    from tickarchive.ops.journal_retention import RetentionPolicy, SegmentFate, prune_journal
    from tickarchive.settings import load_settings

    settings = load_settings()
    policy = RetentionPolicy(
        retain_days=settings.journal.retain_days,
        retain_max_bytes=settings.journal.retain_max_bytes,
        replay_window_s=settings.writer.replay_window_s,
    )
    tgt = open_target(target or settings.archive.target)

    def show(s: SegmentFate) -> None:
        detail = f" ({s.detail})" if s.detail else ""
        typer.echo(f"{s.name}  {s.bytes:>14,} bytes  newest {_iso(s.last_ts_us)}  {s.fate.value}{detail}")

    report = prune_journal(_journal_dir(directory), tgt, policy, dry_run=dry_run, on_segment=show)
    freed = sum(s.bytes for s in report.deleted)
    verb = "would free" if dry_run else "freed"
    typer.echo(
        f"{len(report.deleted)} segment(s), {verb} {freed:,} bytes; journal {report.bytes_after:,} bytes "
        f"(journal.retain_max_bytes {report.retain_max_bytes:,})"
    )
    blocked = report.blocked
    if blocked is not None:
        typer.secho(
            f"{blocked.name} is past local retention but {blocked.fate.value.removeprefix('kept: ')}: "
            "run 'tickarchive archive journal' and 'tickarchive archive verify-journal' (docs/runbook.md)",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    journal = typer.Typer(help="Inspect, check and export the raw-frame journal.", no_args_is_help=True)
    journal.command("ls")(journal_ls)
    journal.command("verify")(journal_verify)
    journal.command("export")(journal_export)
    journal.command("prune")(journal_prune)
    quarantine = typer.Typer(help="What the collector set aside instead of storing.", no_args_is_help=True)
    quarantine.command("ls")(quarantine_ls)
    journal.add_typer(quarantine, name="quarantine")
    app.add_typer(journal, name="journal")
    app.command("replay")(replay)
