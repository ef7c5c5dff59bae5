"""``tickarchive bench ...``: every benchmark command, registered in one place.

Each command runs one module of ``tickarchive.bench`` and prints its figures; the docs
quote them with the command that printed them (docs/performance.md, docs/api.md, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from tickarchive.archive.export import ExportOptions
from tickarchive.cli.archive import TablesOpt, _fmt_bytes, _out, _settings
from tickarchive.ingest.errors import IngestError
from tickarchive.loadtest.errors import SimConfigError

app = typer.Typer(help="Benchmarks that print measured figures.", no_args_is_help=True)


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

    from tickarchive.bench.normalize import bench_normalize as run
    from tickarchive.bench.normalize import load_frames

    if input is None and generate is None:
        raise IngestError("give --input FILE, --generate N, or both")
    with tempfile.TemporaryDirectory(prefix="tickarchive-bench-") as tmp:
        path = Path(tmp) / "synthetic.replay" if input is None else input
        if generate is not None:
            from tickarchive.bench.deribit_frames import write_replay_file

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

    from tickarchive.bench.deribit_frames import frames as synth_frames
    from tickarchive.bench.normalize import bench_journal as run
    from tickarchive.settings import load_settings

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


def bench_collector(
    rate: Annotated[float, typer.Option(help="simulator ticker+book frames per second")] = 5000.0,
    seconds: Annotated[float, typer.Option(help="measurement time")] = 20.0,
    instruments: Annotated[int, typer.Option()] = 400,
    connections: Annotated[int, typer.Option()] = 4,
) -> None:
    from tickarchive.bench.collector import run_bench

    run_bench(rate=rate, seconds=seconds, instruments=instruments, connections=connections)


def bench_sim(
    seconds: Annotated[float, typer.Option(help="measurement time per client count")] = 10.0,
    clients: Annotated[str, typer.Option(help="comma-separated client counts")] = "1,4",
    rate: Annotated[float, typer.Option(help="simulator rate (ticker+book per second)")] = 100_000.0,
    instruments: Annotated[int, typer.Option()] = 800,
    fanout: Annotated[bool, typer.Option(help="every client subscribes everything (else: shards)")] = False,
) -> None:
    from tickarchive.bench.sim import run_bench

    counts = [int(c) for c in clients.split(",") if c.strip()]
    if not counts or min(counts) < 1:
        raise SimConfigError("--clients must list positive integers")
    run_bench(seconds=seconds, client_counts=counts, rate=rate, instruments=instruments, fanout=fanout)


@app.command("api")
def bench_api(
    rows: Annotated[int, typer.Option("--rows", help="quotes in the instrument-day")] = 100_000,
    repeat: Annotated[int, typer.Option("--repeat", help="requests per measured query")] = 30,
    http: Annotated[
        bool, typer.Option("--http", help="over loopback HTTP to uvicorn (httpx) instead of in-process")
    ] = False,
) -> None:
    """p50/p95 latency: one instrument-day of quotes (hot, warm), a chain snapshot, a month of OHLCV."""
    from tickarchive.bench.api import run

    run(rows=rows, repeat=repeat, http=http)


@app.command("archive")
def bench_archive(
    rows: Annotated[int, typer.Option("--rows", help="rows per table")] = 1_000_000,
    table: TablesOpt = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", exists=True, file_okay=False, help="an existing scratch directory")
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", help="also measure load/export/restore against this warm store (scratch DB!)"),
    ] = None,
) -> None:
    """Export, verify and restore synthetic months; print rows/s and bytes per row."""
    from tickarchive.bench import archive as bench_mod

    settings = _settings()
    names = table or ["quotes", "trades", "book_changes"]
    options = ExportOptions.from_settings(settings.archive)
    if dsn is not None:
        warm = bench_mod.run_warm(dsn, names, rows, options, work_dir)
        w = RichTable(title="archive bench against the warm store (month 2099-01, deleted afterwards)")
        for col in ("table", "rows", "bytes/row", "load rows/s", "export rows/s", "restore rows/s"):
            w.add_column(col, justify="right")
        for wr in warm:
            w.add_row(
                wr.table,
                f"{wr.rows:,}",
                f"{wr.bytes / wr.rows:.1f}" if wr.rows else "-",
                f"{wr.per_s(wr.load_s):,.0f}",
                f"{wr.per_s(wr.export_s):,.0f}",
                f"{wr.per_s(wr.restore_s):,.0f}",
            )
        _out().print(w)
    results = bench_mod.run(names, rows, options, work_dir)
    t = RichTable(title=f"archive bench: zstd({options.zstd_level}), row groups of {options.row_group_rows:,} rows")
    for col in (
        "table",
        "rows",
        "files",
        "size",
        "bytes/row",
        "export rows/s",
        "verify rows/s",
        "restore-read rows/s",
    ):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(
            r.table,
            f"{r.rows:,}",
            str(r.files),
            _fmt_bytes(r.bytes),
            f"{r.bytes_per_row:.1f}",
            f"{r.per_s(r.export_s):,.0f}",
            f"{r.per_s(r.verify_s):,.0f}",
            f"{r.per_s(r.restore_s):,.0f}",
        )
    _out().print(t)


@app.command("products")
def bench_products(
    rows: Annotated[int, typer.Option("--rows", help="quotes in the day of the chain (800 options)")] = 1_000_000,
    lake_rows: Annotated[int, typer.Option("--lake-rows", help="quotes in the lake's month")] = 3_000_000,
    spark: Annotated[bool, typer.Option("--spark/--no-spark", help="also time Spark (starts a JVM)")] = True,
) -> None:
    """Chain snapshots/s over a day per tier, surface time per instant, Spark/DuckDB/polars on a lake month."""
    from tickarchive.bench.products import run

    run(rows=rows, lake_rows=lake_rows, spark=spark)


@app.command("rollover")
def bench_rollover_cmd(
    rows: Annotated[int, typer.Option("--rows", help="quote rows (trades get rows/20)")] = 1_000_000,
    timescaledb: Annotated[
        bool, typer.Option("--timescaledb/--no-timescaledb", help="also load the PGlite TimescaleDB")
    ] = True,
    tsdb_rows: Annotated[int, typer.Option("--tsdb-rows", help="quote rows for the PGlite run")] = 100_000,
) -> None:
    """Rollover throughput and bytes per row on synthetic data (own temporary servers)."""
    from tickarchive.bench.rollover import run_bench

    run_bench(rows, timescaledb=timescaledb, tsdb_rows=tsdb_rows, echo=typer.echo)


@app.command("quality")
def bench_quality(
    quotes: Annotated[int, typer.Option("--quotes", min=1, help="synthetic quotes")] = 1_000_000,
    trades: Annotated[int, typer.Option("--trades", min=1, help="synthetic trades")] = 200_000,
) -> None:
    """Rows/s of the quality report's scanners (one core, no database): the report's CPU floor."""
    from tickarchive.bench.quality import run

    f = run(quotes, trades)
    typer.echo(f"quality scan: {f.quotes:,} quotes at {f.quotes_per_s:,.0f} rows/s, "
               f"{f.trades:,} trades at {f.trades_per_s:,.0f} rows/s (800 instruments)")


@app.command("stream")
def bench_stream(
    rate: Annotated[float, typer.Option("--rate", help="simulator notifications per second")] = 5000.0,
    seconds: Annotated[float, typer.Option("--seconds", help="measured seconds per client count")] = 20.0,
    clients: Annotated[str, typer.Option("--clients", help="client counts, comma-separated")] = "1,10,100",
    instruments: Annotated[int, typer.Option("--instruments", help="simulated option chain size")] = 800,
    copies: Annotated[int, typer.Option("--copies", help="copies of the live run per replay tier")] = 4,
    mechanisms: Annotated[
        bool, typer.Option("--mechanisms/--no-mechanisms", help="also compare socket / QuestDB polling / NOTIFY")
    ] = True,
    fmt: Annotated[str, typer.Option("--format", help="stream message format: arrow or json")] = "arrow",
) -> None:
    """Live fan-out (rows/s per client, latency p50/p99 for 1/10/100 clients); replay rows/s from each tier."""
    from tickarchive.bench.stream import run

    counts = [int(c) for c in clients.split(",") if c.strip()]
    run(rate, seconds, counts, instruments, copies, mechanisms, fmt)


@app.command("cost")
def bench_cost(
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="write the cost model document here (docs/cost-model.md)")
    ] = None,
    instruments: Annotated[int | None, typer.Option(help="default: the cost model's instrument count")] = None,
    hours: Annotated[float, typer.Option(min=0.01, help="simulated hours of market")] = 1.0,
    speed: Annotated[float, typer.Option(min=1.0, help="simulated seconds per wall second")] = 10.0,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="scratch directory (default: /tmp)")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="keep the scratch directory")] = False,
    warm_instruments: Annotated[
        int, typer.Option(min=1, help="instruments whose rows the TimescaleDB (PGlite) measurement loads")
    ] = 100,
) -> None:
    """Bytes per row in every tier through the real pipeline, replay speed, five-year $/month."""
    from tickarchive.bench import cost, cost_doc
    from tickarchive.bench.cost_model import ASSUMPTIONS

    spec = cost.CostSpec(
        instruments=instruments or ASSUMPTIONS.instruments, hours=hours, speed=speed, seed=seed,
        work_dir=work_dir, keep=keep, warm_instruments=warm_instruments,
    )
    result = cost.run(spec, echo=typer.echo)
    typer.echo(cost_doc.summary(result))
    if json_out is not None:
        cost.write_json(result, json_out)
    if markdown is not None:
        markdown.write_text(cost_doc.render(result))


@app.command("warm-compression")
def bench_warm_compression(
    paths: Annotated[
        list[Path], typer.Argument(help="quote Parquet files or directories (e.g. a cost run's lake/table=quotes)")
    ],
    instruments: Annotated[int, typer.Option(min=1, help="keep every row of the first N instruments by name")] = 100,
    top: Annotated[int, typer.Option(min=1, help="columns listed per form")] = 16,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """TimescaleDB compression of quotes, per column: the stored form (exact decimals) vs doubles."""
    from tickarchive.bench import warm_compression as wc

    data = wc.read_quotes(paths, instruments)
    result = wc.run(data, echo=typer.echo)
    typer.echo(wc.summary(result, top))
    if json_out is not None:
        wc.write_json(result, json_out)


@app.command("replay")
def bench_replay(
    frames: Annotated[int, typer.Option(min=1000, help="simulator frames in the journal archive input")] = 1_800_000,
    instruments: Annotated[int | None, typer.Option(help="default: the cost model's instrument count")] = None,
    runs: Annotated[int, typer.Option(min=1, help="replays of the input (the median is reported)")] = 3,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir", exists=True, file_okay=False, help="an existing directory where the input is made once and "
            "kept (default: /tmp)",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """`tickarchive replay` of .tjz files into Parquet: frames/s per core, wall time, peak RSS."""
    import json

    from tickarchive.bench import replay
    from tickarchive.bench.cost_model import ASSUMPTIONS

    spec = replay.ReplaySpec(frames=frames, instruments=instruments or ASSUMPTIONS.instruments, seed=seed, runs=runs)
    result = replay.run(spec, work_dir, echo=typer.echo)
    typer.echo(replay.summary(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_json(), indent=2) + "\n")


@app.command("stack")
def bench_stack_cmd(
    no_pglite: Annotated[bool, typer.Option("--no-pglite", help="skip the PGlite TimescaleDB test server")] = False,
) -> None:
    """Start-up, migrate and stop times of QuestDB, PostgreSQL and the PGlite TimescaleDB."""
    from tickarchive.bench.stack import bench_stack

    for t in bench_stack(include_pglite=not no_pglite):
        typer.echo(f"{t.server:<17} {t.step:<20} {t.seconds:7.2f} s")


@app.command("durability")
def bench_durability(
    rates: Annotated[str, typer.Option(help="frames/s of the commit-mode runs (comma-separated)")] = "5000,50000",
    modes: Annotated[str, typer.Option(help="QuestDB cairo.commit.mode values to compare")] = "nosync,sync",
    seconds: Annotated[float, typer.Option(help="length of each commit-mode run")] = 10.0,
    window_rate: Annotated[
        float, typer.Option(help="simulator frames/s into the collector (window, catch-up)")
    ] = 5000.0,
    window_seconds: Annotated[float, typer.Option(help="collector run for the fsync window (0: skip)")] = 20.0,
    journal_gb: Annotated[float, typer.Option(help="unacknowledged journal to catch up after a kill (0: skip)")] = 1.0,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="scratch directory (default: under paths.local_dir)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """The receive -> fsync window, QuestDB's commit modes (CPU per frame, ack latency) and the
    restart + catch-up time after a SIGKILL with a large unacknowledged journal."""
    import dataclasses

    from tickarchive.bench.durability import CommitMode, run

    rate_list = [float(r) for r in rates.split(",") if r.strip()]
    mode_list: list[CommitMode] = []
    for m in (x.strip() for x in modes.split(",") if x.strip()):
        if m not in ("nosync", "async", "sync"):
            raise IngestError(f"--modes: {m!r} is not a QuestDB commit mode (nosync, async, sync)")
        mode_list.append(m)  # type: ignore[arg-type]
    window, results, catch = run(
        rate_list, mode_list, seconds, window_rate, window_seconds, journal_gb, echo=typer.echo, directory=directory
    )
    if window is not None:
        typer.echo(
            f"receive -> fsync window at {window.rate:g} frames/s over {window.seconds:g} s: "
            f"p50 {window.p50_ms:.1f} ms, p99 {window.p99_ms:.1f} ms, max {window.max_ms:.1f} ms"
        )
    if results:
        t = RichTable(title=f"QuestDB commit modes: one ILP request per table per 50 ms, {seconds:g} s each")
        for col in ("mode", "target frames/s", "achieved", "rows", "QuestDB CPU us/frame", "ack p50 ms",
                    "ack p99 ms", "ack max ms", "requests", "request p50 / p99 ms", "WAL apply after s"):
            t.add_column(col, justify="right")
        for r in results:
            t.add_row(
                r.mode, f"{r.rate:,.0f}", f"{r.achieved_frames_per_s:,.0f}", f"{r.rows:,}",
                f"{r.questdb_cpu_us_per_frame:.1f}", f"{r.ack_p50_ms:.1f}", f"{r.ack_p99_ms:.1f}",
                f"{r.ack_max_ms:.1f}", f"{r.requests:,}", f"{r.request_p50_ms:.1f} / {r.request_p99_ms:.1f}",
                f"{r.apply_s:.1f}",
            )
        _out().print(t)
    if catch is not None:
        typer.echo(
            f"restart after SIGKILL with {catch.journal_bytes / 1e9:.2f} GB ({catch.records:,} records) "
            "unacknowledged, "
            f"live load {catch.live_rate:g} frames/s: metrics up after {catch.metrics_up_s:.1f} s, backlog read "
            f"(writer live) after {catch.live_s:.1f} s, acknowledged after {catch.acked_s:.1f} s "
            f"({catch.journal_bytes / 1e6 / catch.acked_s:.1f} MB/s, {catch.records / catch.acked_s:,.0f} records/s); "
            f"collector CPU {catch.collector_cpu_us_per_record:.1f} us per caught-up record"
        )
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "window": dataclasses.asdict(window) if window else None,
                    "modes": [dataclasses.asdict(r) for r in results],
                    "catch_up": dataclasses.asdict(catch) if catch else None,
                },
                indent=2,
            )
            + "\n"
        )


app.command("normalize")(bench_normalize)
app.command("journal")(bench_journal)
app.command("collector", help="CPU and RSS of the collector at a given frame rate against the simulator.")(
    bench_collector
)
app.command("sim", help="Frames/s the simulator delivers to 1 and to 4 clients over loopback.")(bench_sim)


@app.command("parquet")
def bench_parquet(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="an archive Parquet file (part-NNNN)")],
    zstd_level: Annotated[int, typer.Option(min=1, max=22, help="the archive's level to compare with")] = 9,
) -> None:
    """Bytes per row of an archive file under the archive's options and each lossless alternative."""
    import pyarrow.parquet as pq

    from tickarchive.bench.parquet_encodings import table_of, variants
    from tickarchive.tables import table

    name = table_of(path)
    if name is None:
        raise typer.BadParameter(f"{path} is not an archive file (no {b'tickarchive.table'!r} metadata)")
    data = pq.read_table(path)
    typer.echo(f"{path}: {name}, {data.num_rows:,} rows")
    for v in variants(table(name), data, zstd_level):
        typer.echo(f"  {v.label:<78} {v.bytes_per_row:7.2f} B/row {v.rows_per_s:12,.0f} rows/s written")


@app.command("parquet-trades")
def bench_parquet_trades(
    trades: Annotated[int, typer.Option(min=1000, help="trades to generate")] = 200_000,
    per_day: Annotated[int | None, typer.Option(help="trades a day (default: the cost model's)")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
) -> None:
    """`bench parquet` on days of simulated trades (a quarter hour of `bench cost` holds too few)."""
    from tickarchive.bench.cost_model import ASSUMPTIONS
    from tickarchive.bench.parquet_encodings import simulated_trades, variants
    from tickarchive.tables import TRADES

    rate = per_day or ASSUMPTIONS.trades_per_day
    data = simulated_trades(trades, rate, seed)
    typer.echo(f"trades: {data.num_rows:,} simulated trades at {rate:,} a day ({data.num_rows / rate:.1f} days)")
    for v in variants(TRADES, data):
        typer.echo(f"  {v.label:<78} {v.bytes_per_row:7.2f} B/row {v.rows_per_s:12,.0f} rows/s written")
