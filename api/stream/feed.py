"""The API's end of the collector's live feed (``tickarchive.ingest.publish``, frames of ``tickarchive.livefeed``).

``Feed.run(on_batch, on_gap)`` connects to ``stream.publish_socket``, subscribes after the
last position it holds, and calls ``on_batch(LiveBatch)`` for every acknowledged batch and
``on_gap(reason)`` whenever the feed cannot continue seamlessly (the publisher restarted
or our position left its ring). It reconnects with a capped back-off whenever the socket
goes away; ``connected`` says whether it is attached now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tickarchive.livefeed import frame, read_frame
from tickarchive.pacing import Backoff

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LiveBatch:
    epoch: int
    n: int
    table: str
    rows: int
    acked_us: int
    upto_seq: int
    body: bytes

    @property
    def position(self) -> tuple[int, int]:
        return (self.epoch, self.n)


class Feed:
    def __init__(self, path: Path, backoff: Backoff | None = None) -> None:
        self.path = path
        self.position: tuple[int, int] | None = None
        self.connected = False
        self.epoch: int | None = None
        self._backoff = backoff or Backoff(0.2, 5.0)
        self.reconnects = 0

    async def run(self, on_batch: Callable[[LiveBatch], None], on_gap: Callable[[str], None]) -> None:
        """Until cancelled."""
        logged = False
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError as exc:
                if not logged:
                    log.info("stream: no live feed at %s yet (%s); retrying", self.path, type(exc).__name__)
                    logged = True
                await asyncio.sleep(self._backoff.next_delay_s())
                continue
            logged = False
            try:
                after = list(self.position) if self.position is not None else None
                writer.write(frame({"k": "subscribe", "after": after, "backlog": after is None}))
                await writer.drain()
                await self._read(reader, on_batch, on_gap)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError, OSError) as exc:
                log.warning("stream: live feed lost (%s); reconnecting", type(exc).__name__)
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()
            self.reconnects += 1
            await asyncio.sleep(self._backoff.next_delay_s())

    async def _read(
        self,
        reader: asyncio.StreamReader,
        on_batch: Callable[[LiveBatch], None],
        on_gap: Callable[[str], None],
    ) -> None:
        header, _ = await read_frame(reader, MAX_BODY)
        if header.get("k") != "hello":
            raise ValueError("the publisher did not say hello")
        self.epoch = int(header["e"])
        self.connected = True
        self._backoff.reset()
        if self.position is None:
            log.info("stream: attached to the live feed at %s", self.path)
        while True:
            header, body = await read_frame(reader, MAX_BODY)
            kind = header.get("k")
            if kind == "batch":
                b = LiveBatch(
                    int(header["e"]), int(header["n"]), str(header["t"]), int(header["r"]), int(header["a"]),
                    int(header["s"]), body,
                )
                self.position = b.position
                on_batch(b)
            elif kind == "gap":
                reason = str(header.get("reason", "unknown"))
                log.warning("stream: the live feed has a hole (%s)", reason)
                on_gap(reason)
