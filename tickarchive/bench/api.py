"""``tickarchive bench api``: request latency of the API on synthetic data in real stores.

Starts a private QuestDB and embedded PostgreSQL on free loopback ports (under a temporary
directory, stopped at the end), loads

* one instrument-day of quotes (``--rows``, default 100k: a busy option at ~1 s cadence;
  Deribit's 100 ms ticker gives up to 864k) into QuestDB (2026-10-01, hot) and the same
  into the warm store (2026-09-01, rolled over: ledger ``verified``);
* a 300-option ETH chain day (100k quotes) into QuestDB (2026-10-02);
* a month of trades of one option into the warm store (2026-08) with its ``trades_1m``
  rollup refreshed,

then times requests through the ASGI app in-process (``TestClient``; the figures include
query, tier routing and serialization, not the network) and prints p50/p95.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table as RichTable

from tickarchive.archive import synthetic
from tickarchive.domain import QuoteTick
from tickarchive.months import Month
from tickarchive.settings import (
    ApiSettings,
    ArchiveSettings,
    PathsSettings,
    PostgresSettings,
    Settings,
)
from tickarchive.tables import QUOTES, TRADES

out = Console()


def _quote_events(table: pa.Table, shift_us: int = 0) -> list[QuoteTick]:
    import math

    import pyarrow.compute as pc

    for name in ("ts", "recv_ts"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.add(table.column(name).cast(pa.int64()), shift_us))
    events = []
    for r in table.to_pylist():
        fields: dict[str, Any] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        fields["ts_us"] = fields.pop("ts")
        fields["recv_ts_us"] = fields.pop("recv_ts")
        events.append(QuoteTick(**fields))
    return events


def _ilp(conf: str, events: list[QuoteTick]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from questdb.ingress import Sender

    from tickarchive.store.ilp import IlpEncoder

    with Sender.from_conf(conf) as sender:
        enc = IlpEncoder(protocol_version=int(sender.protocol_version))
        for i in range(0, len(events), 50_000):
            enc.add_all(events[i : i + 50_000])
            for _t, (buf, _n) in enc.take().items():
                sender.flush(buf)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return statistics.median(s), p95


@dataclass(frozen=True, slots=True)
class BenchStack:
    settings: Settings
    instrument: str
    """The instrument of the hot (2026-10-01) and warm (2026-09-01) instrument-days."""
    trade_instrument: str
    """The instrument of the month of trades (2026-08, warm)."""
    pg_superuser_dsn: str


@contextmanager
def stack(rows: int = 100_000) -> Iterator[BenchStack]:
    """Private QuestDB and PostgreSQL loaded with the bench data (stopped and removed on exit)."""
    from tickarchive.store.stack import ephemeral
    from tickarchive.store.warm import WarmStore

    root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-api-"))
    pg_root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-api-pg-"))  # PostgreSQL takes it over
    with contextlib.ExitStack() as servers:
        servers.callback(shutil.rmtree, pg_root, ignore_errors=True)
        servers.callback(shutil.rmtree, root, ignore_errors=True)
        out.print("starting QuestDB and PostgreSQL ...")
        eq = servers.enter_context(ephemeral.questdb(root / "questdb", PathsSettings().cache_dir, ephemeral=False))
        ew = servers.enter_context(ephemeral.postgres(pg_root, ephemeral=False))
        qs, pg, handle = eq.settings, ew.server, eq.handle
        dsns = pg.dsns

        out.print(
            f"loading {rows:,} quotes of one instrument (hot and warm), a 300-option chain, a month of trades ..."
        )
        day_quotes = synthetic.quotes(rows, Month(2026, 10), seed=1, n_instruments=1, span_days=1.0)
        instrument = day_quotes.column("instrument")[0].as_py()
        chain = synthetic.quotes(100_000, Month(2026, 10), seed=3, n_instruments=300, span_days=1.0)
        _ilp(handle.ilp_conf, _quote_events(day_quotes) + _quote_events(chain, 86_400_000_000))
        handle.wait_for_wal(120)
        warm_day = synthetic.quotes(rows, Month(2026, 9), seed=1, n_instruments=1, span_days=1.0)
        month_trades = synthetic.trades(30 * 2000, Month(2026, 8), seed=2, n_instruments=1, span_days=31.0)
        trade_instrument = month_trades.column("instrument")[0].as_py()
        with WarmStore.open(dsns.owner) as sink:
            for batch in warm_day.to_batches(50_000):
                sink.insert(QUOTES, batch)
            for batch in month_trades.to_batches(50_000):
                sink.insert(TRADES, batch)
        import psycopg

        with psycopg.connect(dsns.owner, autocommit=True) as conn:
            conn.execute("SELECT tickarchive_refresh_rollups('2026-08-01', '2026-09-01')")
            conn.execute(
                "INSERT INTO rollover_ledger (day, table_name, status) VALUES ('2026-09-01', 'quotes', 'verified')"
            )
            for d in range(31):
                aug = dt.date(2026, 8, 1) + dt.timedelta(days=d)
                conn.execute(
                    "INSERT INTO rollover_ledger (day, table_name, status) VALUES (%s, 'trades', 'verified')", (aug,)
                )
            # steady state, as for rolled-over days: vacuumed (hint bits, visibility map) and
            # checkpointed, so the measurements do not race the load's background writes
            conn.execute("VACUUM ANALYZE")
        with psycopg.connect(pg.superuser_dsn(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")

        settings = Settings(
            questdb=qs,
            postgres=PostgresSettings(dsn=dsns.owner, reader_dsn=dsns.reader),
            archive=ArchiveSettings(target=str(root / "lake"), cache_dir=root / "cache"),
            api=ApiSettings(),
        )
        yield BenchStack(settings, instrument, trade_instrument, pg.superuser_dsn())


def cases(st: BenchStack, rows: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, path, query parameters) of every measured request."""
    one = {"instrument": st.instrument, "limit": rows}
    hot_day = {**one, "start": "2026-10-01", "end": "2026-10-02"}
    warm_day_q = {**one, "start": "2026-09-01", "end": "2026-09-02"}
    top = {"columns": "bid_price,bid_amount,ask_price,ask_amount,mark_iv", "format": "parquet"}
    return [
        ("quotes instrument-day, hot, top of book, parquet", "/quotes", {**hot_day, **top}),
        ("quotes instrument-day, warm, top of book, parquet", "/quotes", {**warm_day_q, **top}),
        ("quotes instrument-day, hot, all 31 columns, parquet", "/quotes", {**hot_day, "format": "parquet"}),
        ("quotes instrument-day, warm, all 31 columns, parquet", "/quotes", {**warm_day_q, "format": "parquet"}),
        ("quotes first page (10k rows), hot, json", "/quotes", {**hot_day, "limit": 10_000}),
        (
            "chain ETH (300 options), hot",
            "/chain",
            {"currency": "ETH", "at": "2026-10-02T12:00:00Z", "lookback_s": 3600},
        ),
        (
            "ohlcv 1 month, 1h bars, warm rollup",
            "/ohlcv",
            {"instrument": st.trade_instrument, "start": "2026-08-01", "end": "2026-09-01", "interval": "1h"},
        ),
    ]


class _Served:
    """The app served by uvicorn on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        from tickarchive.store.stack.procs import free_port

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def run(rows: int = 100_000, repeat: int = 30, http: bool = False) -> None:
    """Measure every case ``repeat`` times (after two unmeasured requests) through the ASGI
    app in-process (``TestClient``) or, with ``http``, over loopback HTTP to uvicorn (httpx)."""
    import httpx
    from fastapi.testclient import TestClient

    from tickarchive.api.app import create_app

    with stack(rows) as st:
        app = create_app(st.settings)
        served: _Served | None = None
        client: Any
        if http:
            served = _Served(app)
            client = httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=120)
        else:
            client = TestClient(app)
        results = []
        try:
            for name, path, params in cases(st, rows):

                def call(path: str = path, params: dict[str, Any] = params) -> Any:
                    return client.get(path, params=params)

                call()
                call()
                samples = []
                size = 0
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    r = call()
                    samples.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text[:300]
                    size = len(r.content)
                p50, p95 = _percentiles(samples)
                results.append((name, p50, p95, size, r.headers.get("x-row-count", "")))
                out.print(f"  {name}: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
        finally:
            client.close()
            if served is not None:
                served.stop()

    how = "uvicorn + httpx over loopback" if http else "in-process"
    t = RichTable(title=f"tickarchive bench api ({repeat} requests each, {how})")
    for col in ("query", "rows", "bytes", "p50 ms", "p95 ms"):
        t.add_column(col, justify="left" if col == "query" else "right")
    for name, p50, p95, size, n in results:
        t.add_row(name, n, f"{size:,}", f"{p50 * 1000:.1f}", f"{p95 * 1000:.1f}")
    out.print(t)
