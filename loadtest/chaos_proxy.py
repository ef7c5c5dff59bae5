"""A chaos proxy in front of QuestDB's HTTP port (the ``questdb-reject`` and
``journal-corrupt`` chaos of ``tickarchive loadtest``).

The collector's writer (and everything else of the collector that speaks HTTP to
QuestDB: backfill queries) points at the proxy; the proxy forwards every request to
QuestDB, except ILP writes (``POST /write``) that its policy answers itself:

* ``reject`` (a window the harness opens and closes): every ``TRANSIENT_400_EVERY``-th
  write of more than one row is answered ``400`` once (QuestDB's JSON error shape, naming
  a line every other time: the writer isolates the rows, by line or by bisection, and the
  parts go through); every ``UNAVAILABLE_EVERY``-th write is answered ``503`` (the writer
  retries the batch); and a few ILP rows of ``quotes`` picked when the window opens
  (``POISONED_ROWS``) are refused with ``400`` naming their line **whenever** they come
  (inside the window or after it): the writer must set exactly those rows aside in its
  quarantine and store everything else.
* ``hold``: every write is answered ``503`` (QuestDB "down" for the writer only: the
  journal keeps growing past the checkpoint).

The proxy relies on its clients not pipelining (``http.client`` and httpx do not): a
request is read whole (``Content-Length`` body), then either forwarded and QuestDB's
answer piped back, or answered here while nothing is outstanding upstream.

It runs an asyncio loop in a thread it owns (``start``/``close``); the harness flips the
policy from its own thread (plain attribute writes, read by the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from tickarchive.loadtest.errors import HarnessError
from tickarchive.store.ilp import split_rows

log = logging.getLogger(__name__)

TRANSIENT_400_EVERY: Final = 7
UNAVAILABLE_EVERY: Final = 5
POISONED_ROWS: Final = 3
_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 512 * 1024 * 1024


@dataclass(slots=True)
class ProxyStats:
    forwarded: int = 0
    writes: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    """What the proxy answered itself: ``transient_400``, ``poisoned_400``, ``503``, ``held_503``."""
    poisoned_rows: tuple[bytes, ...] = ()


class ChaosProxy:
    """``ChaosProxy(upstream_host, upstream_port).start()`` -> the port it listens on."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.reject = False
        self.hold = False
        self.stats = ProxyStats()
        self._poisoned: set[bytes] = set()
        self._want_poison = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._clients: set[asyncio.Task[None]] = set()

    # ---- control (harness thread) -------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> int:
        self._thread = threading.Thread(target=self._main, name="chaos-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise HarnessError(f"chaos proxy did not start: {self._error!r}")
        return self.port

    def start_rejecting(self) -> None:
        """Open the reject window; the next ``quotes`` write donates the poisoned rows."""
        self._want_poison = not self._poisoned
        self.reject = True

    def stop_rejecting(self) -> None:
        self.reject = False

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    # ---- the loop (proxy thread) ----------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except (OSError, RuntimeError) as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, self.host, 0)
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for t in list(self._clients):
                t.cancel()
            for t in list(self._clients):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        up_writer: asyncio.StreamWriter | None = None
        pipe: asyncio.Task[None] | None = None
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    return
                head, body = req
                canned = self._decide(head, body)
                if canned is not None:
                    writer.write(canned)
                    await writer.drain()
                    continue
                if up_writer is None or up_writer.is_closing() or (pipe is not None and pipe.done()):
                    if pipe is not None:
                        pipe.cancel()
                    try:
                        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                    except OSError:
                        writer.write(_response(503, "chaos proxy: QuestDB unreachable"))
                        await writer.drain()
                        up_writer = None
                        continue
                    pipe = asyncio.create_task(_pipe(up_reader, writer))
                self.stats.forwarded += 1
                up_writer.write(head + body)
                await up_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            if pipe is not None:
                pipe.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await pipe
            if up_writer is not None:
                up_writer.close()
            writer.close()
            self._clients.discard(task)

    def _decide(self, head: bytes, body: bytes) -> bytes | None:
        """A canned answer for this request, or None (forward it)."""
        if not head.startswith(b"POST /write"):
            return None
        st = self.stats
        st.writes += 1
        if self.hold:
            st.answered["held_503"] += 1
            return _response(503, "chaos proxy: holding writes")
        if self._want_poison and body.startswith(b"quotes,"):
            rows = split_rows(body)
            if len(rows) > POISONED_ROWS + 2:
                self._want_poison = False
                picked = rows[1 : 1 + POISONED_ROWS]
                self._poisoned.update(picked)
                st.poisoned_rows = tuple(picked)
        if self._poisoned and any(p in body for p in self._poisoned):
            for i, row in enumerate(split_rows(body), 1):  # (the search above is cheap; this is not)
                if row in self._poisoned:
                    st.answered["poisoned_400"] += 1
                    return _response(400, f"chaos proxy: row refused for good in line {i}", line=i)
        if not self.reject:
            return None
        n = st.writes
        if n % UNAVAILABLE_EVERY == 0:
            st.answered["503"] += 1
            return _response(503, "chaos proxy: unavailable")
        if n % TRANSIENT_400_EVERY == 0 and len(split_rows(body)) > 1:
            # never a single row: the writer sets a row refused alone with a 400 aside
            st.answered["transient_400"] += 1
            line = 1 if (n // TRANSIENT_400_EVERY) % 2 else None
            return _response(400, "chaos proxy: batch refused once", line=line)
        return None


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One HTTP/1.1 request (head, body), or None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    except asyncio.LimitOverrunError as exc:
        raise ValueError("request head too long") from exc
    if len(head) > _MAX_HEAD:
        raise ValueError("request head too long")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding":
            raise ValueError("chunked requests are not supported by the chaos proxy")
    if length > _MAX_BODY:
        raise ValueError("request body too large")
    body = await reader.readexactly(length) if length else b""
    return head, body


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while True:
            chunk = await src.read(1 << 16)
            if not chunk:
                dst.close()  # QuestDB closed: so do we (the client reconnects)
                return
            dst.write(chunk)
            await dst.drain()


def _response(status: int, message: str, line: int | None = None) -> bytes:
    doc: dict[str, object] = {"code": "invalid" if status < 500 else "internal error", "message": message}
    if line is not None:
        doc["line"] = line
    doc["errorId"] = "chaos-proxy"
    body = json.dumps(doc).encode()
    reason = {400: "Bad Request", 503: "Service Unavailable"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
