"""``tickarchive bench stream``: live fan-out and replay throughput of ``/stream``.

Processes, as in production: a private QuestDB and PostgreSQL (free ports), the simulator
(``tickarchive sim``), the collector (``tickarchive collect``, publishing on a Unix socket)
and the API (``tickarchive api``); the WebSocket clients run in this process.

* **live fan-out**: for 1, 10 and 100 clients, each subscribed to the whole ETH chain
  (quotes, trades, book changes; Arrow messages) while the simulator drives ``--rate``
  notifications/s: rows/s delivered per client and the added latency from QuestDB's
  acknowledgement (the collector stamps it, ``acked_us``) to the client's receipt, p50/p99
  over every message, with the spread between clients;
* **replay**: the stored rows copied to a day that is then rolled over into the warm store,
  and to a day of an earlier month that is archived to Parquet (its warm month dropped):
  rows/s delivered to one client (speed 0, Arrow ``merged`` messages, each decoded into
  polars DataFrames by ``tickarchive.client.stream``) from the hot, warm and cold tier;
* ``--mechanisms``: the added latency of three ways to get acknowledged rows from the
  collector to the API (the choice docs/api.md explains): a Unix socket (what the
  publisher does), QuestDB polled by ``ts``, PostgreSQL ``LISTEN/NOTIFY``.

Clocks: every process reads the same machine clock, so ``received - acked_us`` is the
added latency. Run it under ``flock /tmp/tickarchive-bench.lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from tickarchive.client.stream import ARROW_MAGIC, Batch, Merged, decode_message, ws_url
from tickarchive.loadtest.harness_procs import CLI, CollectorProcess, SimProcess
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

CHANNELS = ["quotes", "trades", "book_changes"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


@dataclass
class ClientStats:
    rows: int = 0
    messages: int = 0
    bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    closed: str = ""


def _header(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, bytes):
        n = int.from_bytes(data[4:8], "big")
        head: dict[str, Any] = orjson.loads(data[8 : 8 + n])
        return head
    head = orjson.loads(data)
    return head if isinstance(head, dict) else {}


async def _live_client(url: str, request: str, stats: ClientStats, until: float, warm_until: float) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with connect(ws_url(url), max_size=None, ping_interval=None) as ws:
        await ws.send(request)
        try:
            while time.monotonic() < until:
                try:
                    data = await asyncio.wait_for(ws.recv(), max(0.01, until - time.monotonic()))
                except TimeoutError:
                    break
                now_us = time.time_ns() // 1000
                if (isinstance(data, bytes) and data[:4] == ARROW_MAGIC) or isinstance(data, str):
                    head = _header(data)
                    if head.get("type") != "rows" or time.monotonic() < warm_until:
                        continue
                    stats.rows += int(head.get("count", 0))
                    stats.messages += 1
                    stats.bytes += len(data)
                    acked = head.get("acked_us")
                    if acked:
                        stats.latencies_ms.append((now_us - int(acked)) / 1000)
        except ConnectionClosed as exc:
            stats.closed = f"{exc.rcvd.code if exc.rcvd else '?'} {exc.rcvd.reason if exc.rcvd else ''}"


async def fan_out(url: str, clients: int, seconds: float, warmup_s: float, fmt: str) -> list[ClientStats]:
    request = orjson.dumps({"mode": "live", "channels": CHANNELS, "currency": "ETH", "format": fmt}).decode()
    stats = [ClientStats() for _ in range(clients)]
    start = time.monotonic()
    warm_until = start + warmup_s
    until = warm_until + seconds
    async with asyncio.TaskGroup() as tg:
        for s in stats:
            tg.create_task(_live_client(url, request, s, until, warm_until))
    return stats


async def replay_rate(url: str, start_us: int, end_us: int) -> tuple[int, float, int]:
    """(rows, seconds, bytes) of one replay client over [start, end), speed 0, Arrow: every
    message decoded into polars DataFrames (``tickarchive.client.stream``), as a client
    would."""
    from websockets.asyncio.client import connect

    request = orjson.dumps({"mode": "replay", "channels": CHANNELS, "start": str(start_us), "end": str(end_us),
                            "format": "arrow", "speed": 0}).decode()
    rows = nbytes = 0
    # as tickarchive.client does: no permessage-deflate (zlib over LZ4-compressed Arrow
    # costs the server more CPU than the whole replay and saves nothing)
    async with connect(ws_url(url), max_size=None, ping_interval=None, compression=None) as ws:
        await ws.send(request)
        t0 = time.perf_counter()
        while True:
            data = await ws.recv()
            item = decode_message(data, 0)
            if isinstance(item, Merged):  # several channels: merged messages
                rows += sum(f.height for _, f in item.parts)
            elif isinstance(item, Batch):
                rows += item.frame.height
            elif isinstance(item, dict) and item.get("type") == "end":
                break
            else:
                continue
            nbytes += len(data)
        return rows, time.perf_counter() - t0, nbytes


# ---------------------------------------------------------------------- processes


def _start_api(tmp: Path, qdb: QuestDBHandle, warm: WarmHandle, sock: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        TICKARCHIVE_QUESTDB__HOST=qdb.host,
        TICKARCHIVE_QUESTDB__HTTP_PORT=str(qdb.http_port),
        TICKARCHIVE_QUESTDB__PG_PORT=str(qdb.pg_port),
        TICKARCHIVE_POSTGRES__DSN=warm.owner_dsn,
        TICKARCHIVE_POSTGRES__READER_DSN=warm.reader_dsn,
        TICKARCHIVE_PATHS__LOCAL_DIR=str(tmp / "local"),
        TICKARCHIVE_ARCHIVE__TARGET=str(tmp / "lake"),
        TICKARCHIVE_ARCHIVE__CACHE_DIR=str(tmp / "cache"),
        TICKARCHIVE_STREAM__PUBLISH_SOCKET=str(sock),
        TICKARCHIVE_API__MAX_SPAN_DAYS="400",
    )
    log = open(tmp / "api.log", "ab")  # noqa: SIM115 - owned by the process's lifetime below
    proc = subprocess.Popen([*CLI, "api", "--port", str(port)], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited ({proc.returncode}); see {tmp / 'api.log'}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    raise RuntimeError(f"the API did not start; see {tmp / 'api.log'}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- tiers for replay


def _copy(qdb: QuestDBHandle, table: str, shift_s: int, since_us: int, until_us: int) -> None:
    from tickarchive.tables import BY_NAME, ColumnType

    t = BY_NAME[table]
    exprs = [
        f"dateadd('s', {shift_s}, {c.name}) {c.name}" if c.type is ColumnType.TIMESTAMP and c.name in
        ("ts", "recv_ts") else c.name
        for c in t.columns
    ]
    cols = ", ".join(t.column_names)
    qdb.query(f"INSERT INTO {t.name} ({cols}) SELECT {', '.join(exprs)} FROM {t.name} "
              f"WHERE ts >= {since_us} AND ts < {until_us}")


def prepare_tiers(qdb: QuestDBHandle, warm: WarmHandle, tmp: Path, since_us: int, until_us: int,
                  copies: int) -> dict[str, tuple[int, int]]:
    """Copy [since, until) ``copies`` times to a warm day and a cold day; roll over, archive."""
    from tickarchive.archive.export import ExportOptions, export_month
    from tickarchive.archive.targets import open_target
    from tickarchive.months import Month
    from tickarchive.store.hot import HotReader, HotStore
    from tickarchive.store.rollover import RolloverOptions, run
    from tickarchive.store.warm import WarmStore
    from tickarchive.tables import BY_NAME, MARKET_TABLES

    today = dt.datetime.now(dt.UTC).date()
    span = until_us - since_us
    cold_day = (today.replace(day=1) - dt.timedelta(days=70)).replace(day=10)
    days = {"warm": today - dt.timedelta(days=40), "cold": cold_day}
    ranges = {"hot": (since_us, until_us)}
    span_s = span // 1_000_000 + 2
    for tier, day in days.items():
        first = int(dt.datetime.combine(day, dt.time(1), dt.UTC).timestamp()) - since_us // 1_000_000
        for k in range(copies):
            for table in CHANNELS:
                _copy(qdb, table, first + k * span_s, since_us, until_us)
        ranges[tier] = (since_us + first * 1_000_000, until_us + (first + (copies - 1) * span_s) * 1_000_000)
    qdb.wait_for_wal(timeout_s=600)
    now_us = time.time_ns() // 1000
    with HotStore(qdb.pg_dsn, qdb.http_url) as h, WarmStore(warm.owner_dsn, warm.dialect, pglite=warm.pglite) as w:
        for day in (days["cold"], days["warm"]):
            report = run(h, w, now_us, RolloverOptions(hot_retention_days=1, reader=HotReader.AUTO), day=day)
            if not report.ok:
                raise RuntimeError(f"rollover of {day} failed: {report.problems}")
    month = Month.of(days["cold"])
    target = open_target(str(tmp / "lake"))
    with WarmStore.open(warm.owner_dsn) as source:
        for t in (*MARKET_TABLES, BY_NAME["gaps"]):
            export_month(source, target, t, month, ExportOptions(staging_dir=tmp / "staging"))
    lo = dt.datetime.fromtimestamp(month.start_us / 1e6, dt.UTC)
    hi = dt.datetime.fromtimestamp(month.end_us / 1e6, dt.UTC)
    for t in (*MARKET_TABLES, BY_NAME["gaps"]):  # what warm retention does once the archive verified
        warm.query(f"DELETE FROM {t.name} WHERE ts >= %s AND ts < %s", (lo, hi))
    return ranges


# ---------------------------------------------------------------------- the bench


def run(rate: float, seconds: float, clients: list[int], instruments: int, copies: int, mechanisms: bool,
        fmt: str, warmup_s: float = 5.0) -> None:
    from tickarchive.settings import PathsSettings
    from tickarchive.store.stack import ephemeral
    from tickarchive.store.stack.procs import free_port

    tmp = Path(tempfile.mkdtemp(prefix="tickarchive-bench-stream-"))
    pg_root = Path(tempfile.mkdtemp(prefix="tickarchive-bench-stream-pg-"))
    print(f"machine load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; scratch {tmp}", flush=True)
    with contextlib.ExitStack() as stack:
        q = stack.enter_context(ephemeral.questdb(tmp / "questdb", PathsSettings().cache_dir, ephemeral=False))
        w = stack.enter_context(ephemeral.postgres(pg_root, ephemeral=False))
        qdb, warm = q.handle, w.handle
        if mechanisms:
            from tickarchive.bench.stream_mechanisms import measure

            measure(qdb, warm, tmp)
        sock = tmp / "feed.sock"
        port = free_port()
        api = _start_api(tmp, qdb, warm, sock, port)
        stack.callback(_stop, api)
        url = f"http://127.0.0.1:{port}"
        sim = SimProcess(rate, instruments, 20.0, tmp / "sendlog", tmp / "sim.log")
        sim.start()
        collector = CollectorProcess(
            ws_url=sim.ws_url, journal_dir=tmp / "journal", local_dir=tmp / "local", connections=4,
            metrics_port=free_port(), questdb_host=qdb.host, questdb_http_port=qdb.http_port, log=tmp / "collector.log",
            extra_env={"TICKARCHIVE_STREAM__PUBLISH_SOCKET": str(sock)},
        )
        t_start = time.time_ns() // 1000
        collector.start()
        try:
            print(f"\nlive fan-out: simulator {rate:,.0f} notifications/s over {instruments} instruments, "
                  f"clients subscribed to ETH quotes+trades+book_changes ({fmt}); {seconds:g} s measured after "
                  f"{warmup_s:g} s", flush=True)
            print(f"{'clients':>8} {'rows/s per client (min..max)':>30} {'added latency p50':>18} {'p99':>9} "
                  f"{'max':>9} {'p99 spread':>11} {'MB/s all':>9} {'API CPU':>8} {'clients CPU':>11}")
            api_proc = psutil.Process(api.pid)
            me = psutil.Process()
            for n in clients:
                a0, m0 = api_proc.cpu_times(), me.cpu_times()
                t0 = time.monotonic()
                stats = asyncio.run(fan_out(url, n, seconds, warmup_s, fmt))
                wall = time.monotonic() - t0
                a1, m1 = api_proc.cpu_times(), me.cpu_times()
                rates = [s.rows / seconds for s in stats]
                lat = [x for s in stats for x in s.latencies_ms]
                p99s = [pct(s.latencies_ms, 0.99) for s in stats if s.latencies_ms]
                mb = sum(s.bytes for s in stats) / seconds / 1e6
                closed = [s.closed for s in stats if s.closed]
                print(f"{n:>8} {min(rates):>14,.0f} .. {max(rates):>12,.0f} {pct(lat, 0.5):>15.1f} ms "
                      f"{pct(lat, 0.99):>6.1f} ms {max(lat) if lat else float('nan'):>6.1f} ms "
                      f"{(max(p99s) - min(p99s)) if p99s else float('nan'):>8.1f} ms {mb:>9.1f} "
                      f"{(a1.user + a1.system - a0.user - a0.system) / wall * 100:>7.0f}% "
                      f"{(m1.user + m1.system - m0.user - m0.system) / wall * 100:>10.0f}%"
                      + (f"  closed: {closed[:3]}" if closed else ""), flush=True)
        finally:
            collector.stop()
            sim.stop()
        t_end = time.time_ns() // 1000
        qdb.wait_for_wal(timeout_s=600)
        print(f"\nreplay: the stored rows ({t_end - t_start:,} µs of them) copied x{copies} to a warm and a cold day",
              flush=True)
        ranges = prepare_tiers(qdb, warm, tmp, t_start, t_end, copies)
        print(f"{'tier':>6} {'rows':>12} {'seconds':>8} {'rows/s':>12} {'MB/s':>8}")
        for tier in ("hot", "warm", "cold"):
            lo, hi = ranges[tier]
            rows, secs, nbytes = asyncio.run(replay_rate(url, lo, hi))
            print(f"{tier:>6} {rows:>12,} {secs:>8.2f} {rows / secs:>12,.0f} {nbytes / secs / 1e6:>8.1f}", flush=True)
    print(f"machine load average at the end {os.getloadavg()[0]:.2f}")
