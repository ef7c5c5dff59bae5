"""``tickarchive bench products``: what the products and the lake cost on this machine.

Starts a private QuestDB and embedded PostgreSQL (free loopback ports, removed at the
end) and loads one synthetic day of the whole ETH chain (``--rows`` quotes over 800
options, ``tickarchive.archive.synthetic``) three times:

* 2026-10-02 into QuestDB (**hot**);
* 2026-09-02 into the warm store, ledger ``verified`` (**warm**);
* 2026-08-02 into the warm store, archived to Parquet, then deleted from the warm store
  (**cold**: read from the archive through the local cache).

Then it times, per tier, chain snapshots every minute over the day (1,440 instants,
``max_age`` 1 h) through the API's tier router (reading and computing, split), the
surface per instant (ATM / 25-delta / term structure from those snapshots), and, on a
month of quotes (``--lake-rows`` over 2026-07) registered as an Iceberg table in the same
PostgreSQL, the time Spark (local, JDBC catalog), DuckDB (``read_parquet`` of the files
pyiceberg plans) and polars (``scan_iceberg``) take to count it and to aggregate it per
instrument.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table as RichTable

from tickarchive.archive import synthetic
from tickarchive.months import Month
from tickarchive.products import build, surface
from tickarchive.settings import ApiSettings, ArchiveSettings, PathsSettings, PostgresSettings, Settings
from tickarchive.tables import QUOTES

out = Console() if Console().is_terminal else Console(width=160)
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
DAYS = {"hot": "2026-10-02", "warm": "2026-09-02", "cold": "2026-08-02"}
LAKE_MONTH = Month(2026, 7)


def _day_us(day: str) -> int:
    import datetime as dt

    return (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days * US_PER_DAY


@dataclass
class TimedSource:
    """A ``TickSource`` that adds up the time spent reading."""

    inner: Any
    read_s: float = 0.0
    rows: int = 0

    def quotes(self, currency: str, columns: Sequence[str], lo_us: int, hi_us: int) -> pl.DataFrame:
        t0 = time.perf_counter()
        f: pl.DataFrame = self.inner.quotes(currency, columns, lo_us, hi_us)
        self.read_s += time.perf_counter() - t0
        self.rows += f.height
        return f

    def book_changes(self, instrument: str, lo_us: int, hi_us: int) -> pl.DataFrame:
        f: pl.DataFrame = self.inner.book_changes(instrument, lo_us, hi_us)
        return f

    def last_book_snapshot(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        found: int | None = self.inner.last_book_snapshot(instrument, lo_us, at_us)
        return found

    def gaps(self, lo_us: int, hi_us: int) -> pl.DataFrame:
        f: pl.DataFrame = self.inner.gaps(lo_us, hi_us)
        return f


@dataclass
class ChainFigures:
    tier: str
    quotes_read: int
    snapshot_rows: int
    instants: int
    total_s: float
    read_s: float
    snapshots: pl.DataFrame = field(repr=False)

    @property
    def instants_per_s(self) -> float:
        return self.instants / self.total_s


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


@contextlib.contextmanager
def _stack(rows: int, lake_rows: int) -> Iterator[tuple[Settings, Path, str]]:
    """Private servers with the three days loaded; yields (settings, root, owner DSN)."""
    import psycopg

    from tickarchive.archive.export import ExportOptions, export_month
    from tickarchive.archive.local_target import LocalTarget
    from tickarchive.archive.memory import MemoryStore
    from tickarchive.bench.api import _ilp, _quote_events
    from tickarchive.store.stack import ephemeral
    from tickarchive.store.warm import WarmStore

    root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-products-"))
    pg_root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-products-pg-"))
    with contextlib.ExitStack() as servers:
        servers.callback(shutil.rmtree, pg_root, ignore_errors=True)
        servers.callback(shutil.rmtree, root, ignore_errors=True)
        out.print("starting QuestDB and PostgreSQL ...")
        eq = servers.enter_context(ephemeral.questdb(root / "questdb", PathsSettings().cache_dir, ephemeral=False))
        ew = servers.enter_context(ephemeral.postgres(pg_root, ephemeral=False))
        dsns = ew.server.dsns
        out.print(f"loading one day of the chain ({rows:,} quotes, 800 options) into hot, warm and cold ...")
        day = synthetic.quotes(rows, Month(2026, 10), seed=5, n_instruments=800, span_days=1.0)
        base = _day_us("2026-10-01")
        _ilp(eq.handle.ilp_conf, _quote_events(day, _day_us(DAYS["hot"]) - base))
        eq.handle.wait_for_wal(300)
        target = LocalTarget(root / "lake")
        with WarmStore.open(dsns.owner) as warm:
            for tier in ("warm", "cold"):
                shifted = _shift(day, _day_us(DAYS[tier]) - base)
                for batch in shifted.to_batches(50_000):
                    warm.insert(QUOTES, batch)
            cold_month = Month.parse(DAYS["cold"][:7])
            export_month(warm, target, QUOTES, cold_month, ExportOptions())
        with psycopg.connect(dsns.owner, autocommit=True) as conn:
            for tier in ("warm", "cold"):
                conn.execute("INSERT INTO rollover_ledger (day, table_name, status) VALUES (%s, 'quotes', 'verified')",
                             (DAYS[tier],))
            conn.execute("DELETE FROM quotes WHERE ts >= '2026-08-01' AND ts < '2026-09-01'")
            conn.execute("VACUUM ANALYZE")
        out.print(f"writing a month of quotes for the lake ({lake_rows:,} rows over {LAKE_MONTH}) ...")
        store = MemoryStore(batch_rows=200_000)
        store.insert(QUOTES, synthetic.quotes(lake_rows, LAKE_MONTH, seed=7, n_instruments=800, span_days=31.0))
        export_month(store, target, QUOTES, LAKE_MONTH, ExportOptions())
        settings = Settings(
            questdb=eq.settings,
            postgres=PostgresSettings(dsn=dsns.owner, reader_dsn=dsns.reader),
            archive=ArchiveSettings(target=str(root / "lake"), cache_dir=root / "cache"),
            api=ApiSettings(),
        )
        yield settings, root, dsns.owner


def _shift(table: Any, shift_us: int) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in ("ts", "recv_ts"):
        i = table.schema.get_field_index(name)
        col = pc.add(table.column(name).cast(pa.int64()), shift_us).cast(pa.timestamp("us", tz="UTC"))
        table = table.set_column(i, name, col)
    return table


def chain_day(settings: Settings, tier: str) -> ChainFigures:
    from tickarchive.api.routes_products import StoresSource
    from tickarchive.api.stores import Stores

    stores = Stores(settings)
    try:
        src = TimedSource(StoresSource(stores))
        lo = _day_us(DAYS[tier])
        spec = build.ChainSpec("ETH", lo, lo + US_PER_DAY, 60 * US_PER_S, 3600 * US_PER_S)
        frames, total = _timed(lambda: list(build.chain_snapshots(src, spec)))
    finally:
        stores.close()
    snaps = pl.concat(frames) if frames else pl.DataFrame()
    return ChainFigures(tier, src.rows, snaps.height, len(spec.instants), total, src.read_s, snaps)


def lake_figures(settings: Settings, root: Path, dsn: str, spark: bool) -> list[tuple[str, float, float, float, int]]:
    """(engine, start-up s, count s, aggregate s, rows counted) on the lake month."""
    import duckdb

    from tickarchive.archive import catalog
    from tickarchive.archive.iceberg import Lake
    from tickarchive.archive.lake import LakeConfig
    from tickarchive.archive.local_target import LocalTarget

    cfg = LakeConfig.from_settings(settings, str(root / "lake"), dsn)
    lake = Lake(cfg)
    manifest = catalog.read_month_manifest(LocalTarget(root / "lake"), "quotes", LAKE_MONTH)
    assert manifest is not None
    lake.register(manifest)
    tbl = lake.table(QUOTES, create=False)
    lo = LAKE_MONTH.start_us
    results = []

    t0 = time.perf_counter()
    files = [t.file.file_path.removeprefix("file://") for t in tbl.scan(row_filter=f"ts >= '{_iso(lo)}'").plan_files()]
    con = duckdb.connect()
    plan_s = time.perf_counter() - t0
    n, c = _timed(lambda: con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone())
    _, a = _timed(lambda: con.execute(
        "SELECT instrument, count(*), avg(bid_price), max(mark_iv) FROM read_parquet(?) GROUP BY instrument",
        [files]).fetchall())
    results.append(("duckdb (read_parquet of pyiceberg's plan)", plan_s, c, a, int(n[0])))

    os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")  # (no polars-iceberg plugin installed)
    t0 = time.perf_counter()
    lf = pl.scan_iceberg(tbl)
    start_s = time.perf_counter() - t0
    n, c = _timed(lambda: lf.select(pl.len()).collect().item())
    _, a = _timed(lambda: lf.group_by("instrument").agg(pl.len(), pl.col("bid_price").mean(),
                                                         pl.col("mark_iv").max()).collect())
    results.append(("polars (scan_iceberg)", start_s, c, a, int(n)))

    if spark:
        from tickarchive.archive import spark as sparkmod

        s, start_s = _timed(lambda: sparkmod.session(cfg, settings.paths.cache_dir, settings.lake.spark_java_home,
                                                      cores=os.cpu_count() or 1))
        try:
            t = f"{cfg.catalog_name}.{cfg.namespace}.quotes"
            n, c = _timed(lambda: s.sql(f"SELECT count(*) FROM {t}").first()[0])
            _, a = _timed(lambda: s.sql(f"SELECT instrument, count(*), avg(bid_price), max(mark_iv) FROM {t} "
                                        "GROUP BY instrument").collect())
            results.append(("spark (local, Iceberg JDBC catalog)", start_s, c, a, int(n)))
        finally:
            s.stop()
    return results


def _iso(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / US_PER_S, dt.UTC).isoformat()


def run(rows: int = 1_000_000, lake_rows: int = 3_000_000, spark: bool = True) -> None:
    load = os.getloadavg()
    out.print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with _stack(rows, lake_rows) as (settings, root, dsn):
        figures = [chain_day(settings, tier) for tier in ("hot", "warm", "cold")]
        t = RichTable(title="chain snapshots: one day of the ETH chain (800 options), every minute (1,440 instants)")
        for col in ("tier", "quotes read", "snapshot rows", "total s", "read s", "compute s", "instants/s",
                    "snapshot rows/s"):
            t.add_column(col, justify="right" if col != "tier" else "left")
        for f in figures:
            t.add_row(f.tier, f"{f.quotes_read:,}", f"{f.snapshot_rows:,}", f"{f.total_s:.2f}", f"{f.read_s:.2f}",
                      f"{f.total_s - f.read_s:.2f}", f"{f.instants_per_s:,.1f}",
                      f"{f.snapshot_rows / f.total_s:,.0f}")
        out.print(t)
        snaps = figures[0].snapshots
        exp, s_total = _timed(lambda: surface.expiries(snaps))
        pts, p_total = _timed(lambda: surface.points(snaps))
        n = figures[0].instants
        out.print(
            f"surface per instant (from the hot day's snapshots, {snaps.height:,} rows): expiries (ATM, "
            f"25-delta RR/BF, term structure) {1000 * s_total / n:.2f} ms, points {1000 * p_total / n:.2f} ms "
            f"({exp.height:,} expiry rows, {pts.height:,} points for {n:,} instants)"
        )
        lake = lake_figures(settings, root, dsn, spark)
        lt = RichTable(title=f"the lake: one month of quotes ({LAKE_MONTH}), an Iceberg table")
        for col in ("engine", "start-up / plan s", "count s", "aggregate per instrument s", "rows"):
            lt.add_column(col, justify="right" if col != "engine" else "left")
        for name, start_s, c, a, rows_counted in lake:
            lt.add_row(name, f"{start_s:.2f}", f"{c:.3f}", f"{a:.3f}", f"{rows_counted:,}")
        out.print(lt)
    load = os.getloadavg()
    out.print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
