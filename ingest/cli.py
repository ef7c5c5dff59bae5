"""``tickarchive journal ls|verify|export``, ``tickarchive replay`` and
``tickarchive bench normalize``."""

from __future__ import annotations

import json
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
    out: Annotated[Path, typer.Option("--out", "-o", help="output file in the replay format ('-' = stdout)")],
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
    files: Annotated[list[Path], typer.Argument(help="replay-format files (journal exports, captures, .zst)")],
    to: Annotated[Path | None, typer.Option("--to", help="output directory: DIR/<table>.parquet")] = None,
    questdb: Annotated[bool, typer.Option("--questdb", help="write into QuestDB over ILP/HTTP instead")] = False,
    questdb_conf: Annotated[
        str | None, typer.Option(help="ILP client conf (default: http::addr=<questdb.host>:<http_port>;)")
    ] = None,
) -> None:
    """Rebuild every table from raw frames with the collector's own parsers."""
    from tickarchive import venues
    from tickarchive.ingest.replay import ParquetSink, QuestDBSink, Sink, replay_files
    from tickarchive.settings import load_settings

    settings = load_settings()

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

        stats = replay_files(files, sink, venues.load(settings), on_progress)
    typer.echo(f"replayed {stats.frames} frames from {stats.files} file(s) into {target}")
    for name, n in stats.rows.items():
        typer.echo(f"  {name}: {n} rows")
    if stats.unreadable_lines:
        typer.secho(f"  {stats.unreadable_lines} unreadable lines skipped", fg=typer.colors.YELLOW)
    for key, n in stats.malformed.items():
        sample = stats.malformed_samples[key][:120].decode("utf-8", "replace")
        typer.secho(f"  malformed {key}: {n} frame(s), e.g. {sample}", fg=typer.colors.YELLOW)


def bench_normalize(
    input: Annotated[
        Path | None, typer.Option("--input", help="replay-format file (default with --generate: a temporary one)")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="timed passes; figures are medians")] = 3,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write frames, ticks, frames_per_s, ticks_per_s")
    ] = None,
    generate: Annotated[int | None, typer.Option(help="first write this many synthetic frames to --input")] = None,
    seed: Annotated[int, typer.Option(help="seed of --generate")] = 1,
) -> None:
    """Decode + normalize + ILP encoding on one core over a replay-format file."""
    import tempfile

    from tickarchive.ingest.bench import bench_normalize as run
    from tickarchive.ingest.bench import load_frames

    if input is None and generate is None:
        raise IngestError("give --input FILE, --generate N, or both")
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-") as tmp:
        path = Path(tmp) / "synthetic.replay" if input is None else input
        if generate is not None:
            from tickarchive.venues.deribit.synth import write_replay_file

            size = write_replay_file(path, generate, seed)
            typer.echo(f"generated {generate} frames ({size} bytes) into {input or 'a temporary file'}")
        if not path.is_file():
            raise IngestError(f"{path}: no such file (use --generate N to create one)")
        frames = load_frames(path)
    if not frames:
        raise IngestError(f"{path}: no frames")
    result = run(frames, runs)
    from tickarchive.venues.deribit import native

    if result.native:
        which = "native fast path on (tickarchive_native; TICKARCHIVE_NATIVE=0 turns it off)"
    elif native.AVAILABLE:
        which = "native fast path off (TICKARCHIVE_NATIVE=0): pure Python"
    else:
        which = "native fast path off (tickarchive_native not installed): pure Python"
    typer.echo(which)
    typer.echo(
        f"{result.frames} frames ({result.input_bytes / result.frames:.0f} B avg), {result.ticks} rows, "
        f"{runs} run(s): {result.frames_per_s:,.0f} frames/s, {result.ticks_per_s:,.0f} ticks/s "
        f"(median CPU time of one core; runs {min(result.runs_s):.3f}-{max(result.runs_s):.3f} s; "
        f"wall clock {result.wall_frames_per_s:,.0f} frames/s)"
    )
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_json(), indent=2) + "\n")


def bench_journal(
    frames: Annotated[int, typer.Option(min=1, help="synthetic frames to append")] = 100_000,
    rate: Annotated[float, typer.Option(help="frames/s of the paced part (fsync window)")] = 5000.0,
    fsync_interval_ms: Annotated[int | None, typer.Option(help="default: journal.fsync_interval_ms")] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="scratch directory on the journal's disk (default: under paths.local_dir)"),
    ] = None,
) -> None:
    """Journal append throughput, fsync cost and the receive → fsync window."""
    import shutil
    import tempfile

    from tickarchive.ingest.bench import bench_journal as run
    from tickarchive.settings import load_settings
    from tickarchive.venues.deribit.synth import frames as synth_frames

    settings = load_settings()
    interval = fsync_interval_ms if fsync_interval_ms is not None else settings.journal.fsync_interval_ms
    parent = directory if directory is not None else settings.paths.local_dir
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=parent))
    try:
        data = [f for _, f in synth_frames(frames)]
        r = run(scratch, data, rate, interval)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    typer.echo(
        f"{r.records} records ({r.bytes / r.records:.0f} B avg): append {r.append_per_s:,.0f} records/s "
        f"({r.append_us:.2f} us each); fsync of {interval} ms at {rate:g} frames/s: median "
        f"{r.fsync_ms_median:.2f} ms, max {r.fsync_ms_max:.2f} ms; receive -> fsync window <= {r.window_ms_max:.1f} ms"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    journal = typer.Typer(help="Inspect, check and export the raw-frame journal.", no_args_is_help=True)
    journal.command("ls")(journal_ls)
    journal.command("verify")(journal_verify)
    journal.command("export")(journal_export)
    app.add_typer(journal, name="journal")
    app.command("replay")(replay)
    bench.command("normalize")(bench_normalize)
    bench.command("journal")(bench_journal)
