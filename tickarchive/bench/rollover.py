"""``tickarchive bench rollover``: throughput and bytes per row of the rollover.

Starts its own QuestDB, PostgreSQL (and, optionally, the PGlite TimescaleDB) on free
loopback ports under a temporary directory, writes synthetic quotes and trades
(``archive.synthetic``: ~800 ETH options, realistic resolutions) for one day into QuestDB
over ILP/HTTP, then measures per table: both hot readers (PG wire, /exp Parquet), the
whole rollover (read + load + compress + rollups + coverage + verify) in rows/s, and bytes
per row hot on disk, warm on disk before and after compression. Stops every server it
started (by the PIDs it started) at the end.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from tickarchive.archive import synthetic
from tickarchive.months import Month
from tickarchive.store.dialect import Dialect
from tickarchive.store.hot import HotReader, HotStore
from tickarchive.store.rollover import RolloverOptions, Step, run
from tickarchive.store.seal import day_start_us
from tickarchive.store.warm import WarmStore, day_bounds
from tickarchive.tables import GAPS, QUOTES, TRADES, ColumnType, Table

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer, Sender, TimestampMicros

DAY = dt.date(2026, 10, 1)
Echo = Callable[[str], None]


def write_arrow(ilp_conf: str, table: Table, data: pa.Table, chunk_rows: int = 50_000) -> None:
    """Write an Arrow table (``tickarchive.rows.arrow_schema``) into QuestDB over ILP/HTTP."""
    symbols = [c.name for c in table.columns if c.type is ColumnType.SYMBOL]
    ts_cols = {c.name for c in table.columns if c.type is ColumnType.TIMESTAMP}
    others = [c.name for c in table.columns if c.type is not ColumnType.SYMBOL and c.name != "ts"]
    with Sender.from_conf(ilp_conf) as sender:
        version = int(sender.protocol_version)
        for start in range(0, data.num_rows, chunk_rows):
            part = data.slice(start, chunk_rows)
            ts = part.column("ts").cast(pa.int64()).to_pylist()
            sym = {n: part.column(n).to_pylist() for n in symbols}
            col = {n: (part.column(n).cast(pa.int64()) if n in ts_cols else part.column(n)).to_pylist() for n in others}
            buf = Buffer(protocol_version=version)
            for i in range(part.num_rows):
                buf.row(
                    table.name,
                    symbols={n: v[i] for n, v in sym.items() if v[i] is not None},
                    columns={
                        n: (TimestampMicros(v[i]) if n in ts_cols else v[i]) for n, v in col.items() if v[i] is not None
                    },
                    at=TimestampMicros(ts[i]),  # type: ignore[arg-type]
                )
            sender.flush(buf)


def _warm_bytes(warm: WarmStore, table: Table, day: dt.date) -> int:
    lo, hi = day_bounds(day)
    if warm.dialect is Dialect.TIMESCALEDB:
        rows = warm._exec(
            "SELECT coalesce(sum(total_bytes), 0) FROM chunks_detailed_size(%s::regclass) d "
            "JOIN timescaledb_information.chunks c ON c.chunk_schema = d.chunk_schema AND c.chunk_name = d.chunk_name "
            "WHERE c.range_start >= %s AND c.range_end <= %s",
            (warm.storage(table), lo, hi),
            "size",
        )
        return int(rows[0][0])
    name = f"{table.name}_{day:%Y%m%d}"
    rows = warm._exec("SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)", (name,), "size")
    return int(rows[0][0])


def _bench_warm(hot: HotStore, warm: WarmStore, tables: tuple[Table, ...], rows: dict[str, int], echo: Echo,
                label: str, day: dt.date = DAY) -> None:
    """One rollover run of ``day`` over ``tables`` (as in production: gaps, trades, quotes),
    then per table: rows/s over that table's steps, and bytes per row."""
    before: dict[str, int] = {}

    def hook(step: Step, table: Table, d: dt.date) -> None:
        if step is Step.COMPRESS and table in tables:
            before[table.name] = _warm_bytes(warm, table, d)

    now = day_start_us(day) + 2 * 86_400_000_000
    t0 = time.perf_counter()
    report = run(hot, warm, now, RolloverOptions(tables=(GAPS, *tables), drop=False), day=day, hook=hook)
    total = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"bench rollover mismatch: {report.problems}")
    for t in tables:
        n = rows[t.name]
        (outcome,) = [o for o in report.tables if o.table == t.name]
        secs = sum(outcome.seconds.values())
        steps = ", ".join(f"{k.value} {v:.1f}" for k, v in outcome.seconds.items())
        after = _warm_bytes(warm, t, day)
        hot_bytes = sum(p.disk_bytes for p in hot.partitions(t) if p.day == day)
        b = before.get(t.name, after)
        echo(f"{label:<12} {t.name:<7} rollover {n / secs:>10,.0f} rows/s ({n:,} rows in {secs:.1f} s)   "
             f"hot {hot_bytes / n:6.1f} B/row   warm {b / n:6.1f} B/row before compression, "
             f"{after / n:6.1f} B/row after   [s: {steps}]")
    echo(f"{label:<12} whole run {total:.1f} s")


def run_bench(quote_rows: int, *, timescaledb: bool, tsdb_rows: int, echo: Echo) -> None:
    from tickarchive.settings import PathsSettings
    from tickarchive.store.stack import ephemeral

    root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-rollover-"))
    servers: list[Any] = []
    cleanup: list[Path] = [root]
    try:
        eq = ephemeral.start_questdb(root / "questdb", PathsSettings().cache_dir, ephemeral=False)
        servers.append(eq.server)
        qh = eq.handle
        # its own private dir directly in /tmp: as root, PostgreSQL runs as another user (see tests/conftest.py)
        pg_root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-pg-"))
        cleanup.append(pg_root)
        ew = ephemeral.start_postgres(pg_root, ephemeral=False)
        servers.append(ew.server)
        pg = ew.server

        m = Month(DAY.year, DAY.month)
        data = {"quotes": synthetic.quotes(quote_rows, m), "trades": synthetic.trades(max(quote_rows // 20, 1), m)}
        rows = {k: v.num_rows for k, v in data.items()}
        for name, tbl in (("quotes", QUOTES), ("trades", TRADES)):
            t0 = time.perf_counter()
            write_arrow(qh.ilp_conf, tbl, data[name])
            echo(f"ILP write    {name:<7} {rows[name] / (time.perf_counter() - t0):>10,.0f} rows/s")
        qh.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
                 "journal_backlog_bytes) VALUES ('2026-10-02T00:05:00.000000Z', 'bench', true, 1, 1, 0)")
        qh.wait_for_rows("quotes", rows["quotes"], timeout_s=300)
        qh.wait_for_rows("trades", rows["trades"], timeout_s=300)
        qh.wait_for_wal(timeout_s=120)

        with HotStore(qh.pg_dsn, qh.http_url) as hot:
            for tbl in (QUOTES, TRADES):
                for reader in (HotReader.PG, HotReader.PARQUET):
                    t0 = time.perf_counter()
                    n = sum(b.num_rows for b in hot.batches(tbl, DAY, reader))
                    secs = time.perf_counter() - t0
                    echo(f"hot read     {tbl.name:<7} {reader.value:<8} {n / secs:>10,.0f} rows/s ({n:,} rows)")
            with WarmStore(pg.dsns.owner, Dialect.POSTGRES) as warm:
                _bench_warm(hot, warm, (TRADES, QUOTES), rows, echo, "postgres")
            if timescaledb:
                small = min(tsdb_rows, quote_rows)
                et = ephemeral.start_timescaledb(root / "pglite", ephemeral=False)
                servers.append(et.server)
                pgl = et.server
                # PGlite (~50k rows/s) gets a smaller day: move the first `small` quotes to 2026-10-03
                day3 = dt.date(2026, 10, 3)
                sub = data["quotes"].slice(0, small)
                shift = pa.scalar(2 * 86_400_000_000, pa.int64())
                import pyarrow.compute as pc

                ts = pc.add(sub.column("ts").cast(pa.int64()), shift).cast(sub.schema[0].type)
                moved = sub.set_column(0, "ts", ts)
                write_arrow(qh.ilp_conf, QUOTES, moved)
                qh.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, "
                         "frames_total, journal_backlog_bytes) VALUES ('2026-10-04T00:05:00.000000Z', 'bench', "
                         "true, 1, 1, 0)")
                qh.wait_for_wal(timeout_s=120)
                with WarmStore(pgl.dsn, Dialect.TIMESCALEDB, pglite=True) as warm:
                    _bench_warm(hot, warm, (QUOTES,), {"quotes": small}, echo, "timescaledb", day3)
    finally:
        for s in reversed(servers):
            s.down()
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
