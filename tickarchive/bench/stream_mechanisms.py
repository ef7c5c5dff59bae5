"""``tickarchive bench stream --mechanisms``: how acknowledged rows could reach the API.

Ten batches a second of ``ROWS`` quote rows (the ILP body the writer sends: ~150 KB,
i.e. 5,000 ticks/s), for ``seconds``, each way; the figure is the time from QuestDB's
acknowledgement (or the hand-over, for the socket) to the moment the API side holds the
batch:

* **Unix socket** (``tickarchive.ingest.publish``): the publisher's hook frames the body
  and queues it; a subscriber reads it. Also the hook's own cost per batch (it runs on
  the collector's event loop).
* **QuestDB polled by ts**: the batch is written over ILP/HTTP like the writer does; a
  poller asks ``SELECT max(ts)`` every ``POLL_MS``; a batch counts as seen when ``max(ts)``
  reaches its rows (after QuestDB applied the WAL).
* **PostgreSQL LISTEN/NOTIFY**: the body (base64: payloads are text) in
  ``NOTIFY_CHUNK``-character notifications (the server's limit is 8,000 bytes), sent in
  one transaction; a listener reassembles it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from pathlib import Path

import psycopg

from tickarchive.domain import QuoteTick
from tickarchive.ingest.publish import Publisher
from tickarchive.livefeed import frame, read_frame
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.ilp_http import IlpHttpTransport
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.writer_contract import ilp_conf

ROWS = 500
BATCHES_PER_S = 10
POLL_MS = 50
NOTIFY_CHUNK = 7_900


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def _body(ts_us: int, batch: int) -> bytes:
    enc = IlpEncoder(protocol_version=2)
    enc.add_all(
        [
            QuoteTick(f"MECH-{batch}-{i}", ts_us, ts_us + 100, bid_price=1.0 + i, ask_price=1.1 + i, mark_iv=50.0,
                      underlying_price=3000.0, delta=0.5, open_interest=10.0, state="open")
            for i in range(ROWS)
        ]
    )
    return enc.take_payloads()["quotes"][0]


def _line(name: str, lat_ms: list[float], note: str) -> None:
    print(f"{name:<28} p50 {_pct(lat_ms, 0.5):7.2f} ms  p99 {_pct(lat_ms, 0.99):7.2f} ms  "
          f"max {max(lat_ms) if lat_ms else float('nan'):7.2f} ms  {note}", flush=True)


async def _socket(path: Path, seconds: float) -> tuple[list[float], list[float]]:
    pub = Publisher(path, 64 * 2**20, 8 * 2**20)
    runner = asyncio.create_task(pub.run())
    await pub.listening.wait()
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(frame({"k": "subscribe", "after": None}))
    await writer.drain()
    await read_frame(reader)  # hello
    lat: list[float] = []
    hook_us: list[float] = []
    n = int(seconds * BATCHES_PER_S)

    async def read() -> None:
        for _ in range(n):
            head, _body_bytes = await read_frame(reader)
            lat.append((time.time_ns() // 1000 - int(head["a"])) / 1000)

    task = asyncio.create_task(read())
    for i in range(n):
        body = _body(time.time_ns() // 1000, i)
        t0 = time.perf_counter()
        pub.acknowledged("quotes", body, ROWS, i)
        hook_us.append((time.perf_counter() - t0) * 1e6)
        await asyncio.sleep(1 / BATCHES_PER_S)
    await task
    writer.close()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    return lat, hook_us


def _questdb(qdb: QuestDBHandle, seconds: float) -> tuple[list[float], int]:
    transport = IlpHttpTransport.from_conf(ilp_conf(qdb.host, qdb.http_port, 30.0))
    acked: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()
    polls = 0

    def poll() -> None:
        nonlocal polls
        conn = psycopg.connect(qdb.pg_dsn, autocommit=True, prepare_threshold=None)
        while not stop.is_set():
            row = conn.execute("SELECT cast(max(ts) AS long) FROM quotes WHERE instrument LIKE 'MECH-%'").fetchone()
            polls += 1
            now = time.time()
            top = int(row[0]) if row and row[0] is not None else 0
            for ts in list(acked):
                if ts <= top and ts not in seen:
                    seen[ts] = now
            time.sleep(POLL_MS / 1000)
        conn.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    n = int(seconds * BATCHES_PER_S)
    for i in range(n):
        ts = time.time_ns() // 1000
        transport.send(_body(ts, i))
        acked[ts] = time.time()
        time.sleep(1 / BATCHES_PER_S)
    deadline = time.time() + 30
    while len(seen) < len(acked) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join(10)
    transport.close()
    return [(seen[ts] - acked[ts]) * 1000 for ts in acked if ts in seen], polls


def _notify(warm: WarmHandle, seconds: float) -> tuple[list[float], int]:
    listener = psycopg.connect(warm.owner_dsn, autocommit=True)
    listener.execute("LISTEN tickarchive_mech")
    sender = psycopg.connect(warm.owner_dsn)
    sent: dict[int, float] = {}
    lat: list[float] = []
    chunks_per_batch = 0
    n = int(seconds * BATCHES_PER_S)
    got: dict[int, int] = {}

    def listen() -> None:
        for note in listener.notifies(timeout=seconds + 30):
            batch, _k, total, _ = note.payload.split(":", 3)
            b = int(batch)
            got[b] = got.get(b, 0) + 1
            if got[b] == int(total):
                lat.append((time.time() - sent[b]) * 1000)
                if len(lat) == n:
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    for i in range(n):
        text = base64.b64encode(_body(time.time_ns() // 1000, i)).decode()
        parts = [text[j : j + NOTIFY_CHUNK] for j in range(0, len(text), NOTIFY_CHUNK)]
        chunks_per_batch = len(parts)
        sent[i] = time.time()
        with sender.transaction():
            for k, part in enumerate(parts):
                sender.execute("SELECT pg_notify('tickarchive_mech', %s)", (f"{i}:{k}:{len(parts)}:{part}",))
        time.sleep(1 / BATCHES_PER_S)
    t.join(seconds + 35)
    listener.close()
    sender.close()
    return lat, chunks_per_batch


def measure(qdb: QuestDBHandle, warm: WarmHandle, tmp: Path, seconds: float = 10.0) -> None:
    size = len(_body(0, 0))
    print(f"\nmechanisms: {BATCHES_PER_S} batches/s of {ROWS} quote rows ({size / 1024:.0f} KiB of ILP each), "
          f"{seconds:g} s each", flush=True)
    lat, hook = asyncio.run(_socket(tmp / "mech.sock", seconds))
    _line("Unix socket (publisher)", lat, f"hook {_pct(hook, 0.5):.0f} µs p50 / {_pct(hook, 0.99):.0f} µs p99 "
          "on the collector's loop")
    lat_q, polls = _questdb(qdb, seconds)
    _line(f"QuestDB poll every {POLL_MS} ms", lat_q, f"{polls / seconds:.0f} queries/s on QuestDB, "
          f"{len(lat_q)}/{int(seconds * BATCHES_PER_S)} batches seen")
    lat_n, chunks = _notify(warm, seconds)
    _line("PostgreSQL LISTEN/NOTIFY", lat_n, f"{chunks} notifications per batch (8,000-byte payload limit), "
          "through the warm store")
