"""Fixtures: an in-process simulator and a small JSON-RPC WebSocket client."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tickarchive.loadtest.sim import SimConfig, Simulator

START_MS = int(dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)


def base_config(tmp_path: Path, **overrides: Any) -> SimConfig:
    cfg = SimConfig(
        seed=7,
        start_ms=START_MS,
        instruments=60,
        rate_per_s=2000.0,
        trades_per_s=40.0,
        heartbeat_scale=0.02,
        sendlog_dir=tmp_path / "sendlog",
    )
    return cfg.replace(**overrides)


class Client:
    """A JSON-RPC client that keeps notifications aside while waiting for replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.notes: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._id = 0

    async def send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._id += 1
        await self.ws.send(
            orjson.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}}).decode()
        )
        return self._id

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
        """Send ``method`` and return its reply (the deadline only bounds a failure: a reply
        to a subscription of 500 channels on a loaded machine can take seconds)."""
        rid = await self.send(method, params)
        async with asyncio.timeout(timeout_s):
            while True:
                msg = await self._next()
                if msg is not None and msg.get("id") == rid:
                    return msg
                if msg is not None:
                    self.notes.append(msg)

    async def _next(self) -> dict[str, Any] | None:
        text = await self.ws.recv()
        assert isinstance(text, str)
        self.raw.append(text)
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        return msg if isinstance(msg, dict) else None

    async def collect(
        self, seconds: float, until: Callable[[list[dict[str, Any]]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Receive notifications for ``seconds`` (or until ``until(notes)`` holds)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                    msg = await self._next()
            except TimeoutError:
                break
            if msg is not None:
                self.notes.append(msg)
            if until is not None and until(self.notes):
                break
        return self.notes

    def channel_notes(self, prefix: str) -> list[dict[str, Any]]:
        return [
            n for n in self.notes if n.get("method") == "subscription" and n["params"]["channel"].startswith(prefix)
        ]


async def until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``pred`` until it holds (the deadline only bounds a failure)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(config: SimConfig) -> AsyncIterator[Simulator]:
    async with Simulator(config) as sim:
        yield sim


@asynccontextmanager
async def client(sim: Simulator, **kwargs: Any) -> AsyncIterator[Client]:
    async with connect(sim.ws_url, **kwargs) as ws:
        yield Client(ws)


@pytest.fixture
def cfg(tmp_path: Path) -> SimConfig:
    return base_config(tmp_path)
