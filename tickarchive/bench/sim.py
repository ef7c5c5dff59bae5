"""``tickarchive bench sim``: sustained frames/s delivered over loopback.

The simulator runs in its own process (``tickarchive sim``, uvloop). The clients run in
this process on uvloop and are deliberately cheap: after the HTTP upgrade they only
parse WebSocket frame headers and count frames (no UTF-8 or JSON decoding), so the
figure measures the simulator. Channels (every ticker and book plus the trades and
index channels) are split over the clients as the collector shards them; ``fanout``
makes every client subscribe everything instead. Besides frames/s it prints the
simulator process's CPU share and frames per simulator CPU-second: on a shared, loaded
machine the first is bounded by the CPU the simulator gets, the second is its capacity
per core.

``python -m tickarchive.bench.sim [CLIENTS] [STEPS]`` measures the in-process pipeline
instead (``pipeline_cost``: generate, encode, frame, fan out, write to a null transport,
log; no sockets, no kernel), the part of the per-frame cost this code controls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from tickarchive.loadtest.errors import SimServerError


class _FrameCounter(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.frames = 0
        self.bytes = 0
        self.texts: list[bytes] = []
        self.keep_texts = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        self.bytes += len(data)
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(SimServerError(bytes(buf[:end]).decode(errors="replace")))
                return
            del buf[: end + 4]
            self.upgraded.set_result(None)
        pos = 0
        n = len(buf)
        frames = 0
        while n - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if n - pos < head + length:
                break
            if self.keep_texts:
                self.keep_texts -= 1
                self.texts.append(bytes(buf[pos + head : pos + head + length]))
            pos += head + length
            frames += 1
        self.frames += frames
        del buf[:pos]

    def send_text(self, payload: bytes) -> None:
        assert self.transport is not None
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        self.transport.write(header + b"\x00\x00\x00\x00" + payload)  # zero mask key


async def _open(host: str, port: int) -> _FrameCounter:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_FrameCounter, host, port)
    proto.transport = transport
    key = base64.b64encode(os.urandom(16)).decode()
    transport.write(
        (
            f"GET /ws/api/v2 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await proto.upgraded
    return proto


async def _measure(
    host: str, port: int, n_clients: int, seconds: float, fanout: bool, sim_pid: int | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://{host}:{port}/api/v2/public/get_instruments", params={"currency": "ETH"})
        names = [i["instrument_name"] for i in r.json()["result"]]
    channels = [f"{k}.{n}.100ms" for n in names for k in ("ticker", "book")]
    channels += ["trades.option.ETH.100ms", "deribit_price_index.eth_usd"]
    clients = [await _open(host, port) for _ in range(n_clients)]
    req_id = 0
    for i, client in enumerate(clients):
        mine = channels if fanout else channels[i::n_clients]
        for start in range(0, len(mine), 250):
            req_id += 1
            client.send_text(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": req_id,
                        "method": "public/subscribe",
                        "params": {"channels": mine[start : start + 250]},
                    }
                )
            )
            await asyncio.sleep(0.35)  # stay under the subscribe rate limit
    await asyncio.sleep(2.0)  # warm-up
    sim_proc = psutil.Process(sim_pid) if sim_pid is not None else None
    cpu0 = sum(sim_proc.cpu_times()[:2]) if sim_proc else 0.0
    f0 = sum(c.frames for c in clients)
    b0 = sum(c.bytes for c in clients)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    dt = time.perf_counter() - t0
    frames = sum(c.frames for c in clients) - f0
    nbytes = sum(c.bytes for c in clients) - b0
    cpu = (sum(sim_proc.cpu_times()[:2]) - cpu0) if sim_proc else 0.0
    for c in clients:
        assert c.transport is not None
        c.transport.close()
    return {
        "clients": n_clients,
        "frames_per_s": frames / dt,
        "mbytes_per_s": nbytes / dt / 1e6,
        "channels": len(channels),
        "sim_cpu_share": cpu / dt,
        "frames_per_cpu_s": frames / cpu if cpu > 0 else 0.0,
    }


def run_bench(seconds: float, client_counts: list[int], rate: float, instruments: int, fanout: bool) -> None:
    import uvloop

    cmd = [
        sys.executable,
        "-c",
        "from tickarchive.cli import main; main()",
        "sim",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--rate",
        str(rate),
        "--instruments",
        str(instruments),
        "--min-interval-ms",
        "100",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("ready "):
            raise SimServerError(f"simulator did not start: {line!r}")
        hostport = line.split("//", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        print(f"simulator: {line[6:]}  rate={rate:g}/s instruments={instruments} fanout={fanout}")
        for n in client_counts:
            res = uvloop.run(_measure(host, int(port), n, seconds, fanout, proc.pid))
            print(
                f"clients={res['clients']}: {res['frames_per_s']:,.0f} frames/s delivered "
                f"({res['mbytes_per_s']:.1f} MB/s) over {seconds:g}s, {res['channels']} channels; "
                f"simulator CPU {res['sim_cpu_share']:.0%} of a core = "
                f"{res['frames_per_cpu_s']:,.0f} frames per simulator CPU-second"
            )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _NullTransport:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


class _NullSocket:
    """What ``Connection`` needs of a websockets connection, writing nowhere."""

    remote_address = ("127.0.0.1", 0)

    def __init__(self) -> None:
        self.transport = _NullTransport()

    @contextlib.asynccontextmanager
    async def send_context(self) -> AsyncIterator[None]:
        yield


async def pipeline_cost(n_clients: int = 1, steps: int = 600, rate: float = 100_000.0) -> dict[str, float]:
    """CPU per frame of generate -> encode -> fan out -> write -> send log, with every
    ticker and book channel (plus trades and index) sharded over ``n_clients``."""
    from tickarchive.loadtest.sim.config import SimConfig
    from tickarchive.loadtest.sim.connection import Connection
    from tickarchive.loadtest.sim.server import Simulator

    with tempfile.TemporaryDirectory(prefix="tickarchive-simbench-") as tmp:
        sim = Simulator(SimConfig(seed=1, rate_per_s=rate, sendlog_dir=Path(tmp)))
        assert sim.model is not None
        names = [st.inst.name for st in sim.model.active]
        channels = [f"{k}.{n}.100ms" for n in names for k in ("ticker", "book")]
        channels += ["trades.option.ETH.100ms", "deribit_price_index.eth_usd"]
        conns = []
        for i in range(n_clients):
            conn = Connection(f"c{i + 1}", _NullSocket(), None, sim.send_log, 10**9)  # type: ignore[arg-type]
            sim.connections[conn.id] = conn
            for ch in channels[i::n_clients]:
                sim.subs.setdefault(ch, []).append(conn)
            conns.append(conn)
        now_ms = time.time_ns() // 1_000_000
        async with asyncio.TaskGroup() as tg:
            writers = [tg.create_task(c.writer()) for c in conns]
            for i in range(20 + steps):
                if i == 20:
                    f0 = sum(c.frames_sent for c in conns)
                    cpu0 = time.process_time()
                now_ms += sim.config.tick_ms
                sim.step_and_publish(now_ms)
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            cpu = time.process_time() - cpu0
            frames = sum(c.frames_sent for c in conns) - f0
            for task in writers:
                task.cancel()
    return {"clients": n_clients, "frames": frames, "cpu_s": cpu, "us_per_frame": cpu / frames * 1e6}


if __name__ == "__main__":
    import uvloop

    args = [int(a) for a in sys.argv[1:3]]
    res = uvloop.run(pipeline_cost(*args))
    print(
        f"in-process pipeline, clients={res['clients']:.0f}: {res['frames']:,.0f} frames in {res['cpu_s']:.2f} CPU-s = "
        f"{res['us_per_frame']:.2f} us/frame = {1e6 / res['us_per_frame']:,.0f} frames per CPU-second"
    )
