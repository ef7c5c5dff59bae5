"""Streaming end to end: the simulator → a real collector → QuestDB, its live feed → the
API's /stream served by uvicorn → real WebSocket clients (``tickarchive.client.stream``).

Every assertion is against what QuestDB stored: a live client gets every acknowledged row
exactly once; a client that drops and resumes from its last position loses nothing and
sees nothing twice; a client that stops reading is told (4008) and dropped while the
others get everything; a delayed plan sees every row once, never before its delay; replay
delivers the stored rows in exchange-time order; plan limits hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import make_settings
from tests.ingest.conditions import until_stored
from tests.ingest.test_collector import (
    collector_settings,
    quiesce,
    running,
    sim_config,
    sim_conn_of,
    wait_for,
)
from tickarchive.api import keys as keymod
from tickarchive.api.app import create_app, uvicorn_options
from tickarchive.api.stores import Stores
from tickarchive.client import StreamError, stream
from tickarchive.client.stream import Batch, Interrupted, Merged
from tickarchive.loadtest.sim import Simulator
from tickarchive.settings import PlanSettings, Settings, StreamSettings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.tables import BY_NAME

CHANNELS = ("quotes", "trades", "book_changes", "gaps")
DROPPED = "tickarchive_api_stream_dropped_total"
DELAY_S = 8
"""The delayed plan's delay. It reads the store ``delay`` behind now, so it gets a row only
if the row is stored within ``delay`` of its exchange time (a resubscription snapshot
carries its book's last change time): 2 s was less than a loaded machine's reconnect plus
flush plus WAL apply, and the delayed client missed rows it is asserted to get."""
PLANS = {
    "pro": PlanSettings(concurrent_streams=10),
    "delayed": PlanSettings(live_delay_s=DELAY_S, concurrent_streams=1),
}


@asynccontextmanager
async def serving(settings: Settings, stores: Stores) -> AsyncIterator[tuple[str, Any]]:
    """The API app under uvicorn on a socket bound here (no port race), in this event loop."""
    app = create_app(settings, stores)
    sock = socket.socket()
    # small send buffers (inherited by accepted sockets): a client that stops reading fills
    # them within a few messages, so the server's flow control and slow-client drop engage
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options(settings))
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_for(lambda: server.started or task.done(), 60, "uvicorn to start")
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task
        sock.close()


def keys_of(table: str, frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    return frame.select(list(BY_NAME[table].dedup_keys)).rows()


def stored_keys(qdb: QuestDBHandle, table: str, where: str = "") -> list[tuple[Any, ...]]:
    cols = ", ".join(f"cast({k} AS long)" if k == "ts" else k for k in BY_NAME[table].dedup_keys)
    return qdb.query(f"SELECT {cols} FROM {table} {where}")


class Collect:
    """Everything one client received, per channel."""

    def __init__(self) -> None:
        self.frames: dict[str, list[pl.DataFrame]] = {c: [] for c in CHANNELS}
        self.positions: list[str] = []
        self.interruptions: list[str] = []
        self.batches: list[Batch] = []
        self.merged: list[Merged] = []

    def add(self, item: Batch | Merged | Interrupted) -> None:
        if isinstance(item, Interrupted):
            self.interruptions.append(item.reason)
            return
        if isinstance(item, Merged):
            self.merged.append(item)
            for channel, frame in item.parts:
                self.frames[channel].append(frame)
        else:
            self.batches.append(item)
            self.frames[item.channel].append(item.frame)
        if item.position is not None:
            self.positions.append(item.position)

    def keys(self, table: str) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for f in self.frames[table]:
            out.extend(keys_of(table, f))
        return out


async def consume(
    it: AsyncIterator[Batch | Merged | Interrupted], into: Collect, stop_after: int | None = None
) -> None:
    n = 0
    async for item in it:
        into.add(item)
        n += 1
        if stop_after is not None and n >= stop_after:
            return


async def first_item(it: AsyncIterator[Any]) -> Any:
    async for item in it:
        return item
    return None


async def drain(ws: ClientConnection) -> None:
    """Read until the server closes."""
    async for _ in ws:
        pass


def settings_for(qdb: QuestDBHandle, warm: WarmHandle, tmp: Path) -> Settings:
    s = make_settings(qdb, warm, tmp, plans=PLANS, keys_refresh_s=3600)
    return s.model_copy(update={"stream": StreamSettings(publish_socket=tmp / "feed.sock", client_queue_messages=8)})


async def test_live_streams_deliver_every_acknowledged_row_once(
    tmp_path: Path, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    qdb = questdb_clean
    with postgres_clean.connect(postgres_clean.writer_dsn) as conn:
        _, pro = keymod.add_key(conn, "pro", "test", set(PLANS))
        _, delayed = keymod.add_key(conn, "delayed", "test", set(PLANS))
    api_settings = settings_for(qdb, postgres_clean, tmp_path)
    stores = Stores(api_settings)
    coll_settings = collector_settings(connections=2).model_copy(update={"stream": api_settings.stream})
    everything, calls, first_part, second_part, late = Collect(), Collect(), Collect(), Collect(), Collect()
    try:
        async with serving(api_settings, stores) as (url, app):
            hub = app.state.ctx.hub
            async with Simulator(sim_config(tmp_path, rate_per_s=1200.0, instruments=30)) as sim:
                async with running(coll_settings, sim, qdb, tmp_path / "journal") as c:
                    # (the deadlines only bound a failure)
                    await wait_for(lambda: hub.feed.connected, 60, "the API to attach to the live feed")
                    tasks = [
                        asyncio.create_task(consume(stream.live(url, api_key=pro, channels=CHANNELS,
                                                                resume="oldest"), everything)),
                        asyncio.create_task(consume(stream.live(url, api_key=pro, channels=["quotes"],
                                                                instruments=["*-C"], format="json",
                                                                resume="oldest"), calls)),
                        # two channels: the delayed stream comes as merged messages
                        asyncio.create_task(consume(stream.live(url, api_key=delayed,
                                                                channels=["quotes", "book_changes"],
                                                                reconnect=False), late)),
                    ]
                    # a client that stops after a few batches, then resumes from its last position
                    await consume(stream.live(url, api_key=pro, channels=["quotes"], resume="oldest",
                                              reconnect=False), first_part, stop_after=5)
                    # a client that never reads: told it is too slow (4008) and dropped
                    slow_sock = socket.socket()
                    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    slow_sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
                    slow = await connect(url.replace("http", "ws") + "/stream", sock=slow_sock, max_queue=1,
                                         additional_headers={"X-API-Key": pro}, max_size=None)
                    # the client offers permessage-deflate (websockets does by default); the
                    # server declines it (stream.per_message_deflate): one encoding per
                    # subscription, not one compression per client
                    assert slow.request is not None
                    assert slow.response is not None
                    assert "permessage-deflate" in (slow.request.headers.get("Sec-WebSocket-Extensions") or "")
                    assert slow.response.headers.get("Sec-WebSocket-Extensions") is None
                    await slow.send('{"mode": "live", "channels": ["quotes", "trades", "book_changes", "gaps"]}')
                    registry = app.state.ctx.metrics.registry
                    await wait_for(lambda: (registry.get_sample_value(DROPPED) or 0) >= 1, 60,
                                   "the client that does not read to be dropped")
                    # the delayed plan allows one stream at once
                    with pytest.raises(StreamError) as refused:
                        await first_item(stream.live(url, api_key=delayed, reconnect=False))
                    assert refused.value.code == "plan_limit"
                    await asyncio.sleep(1.0)
                    # a dropped connection: a disconnect gap (published open, then backfilled)
                    # and trades backfilled from the history (published like any other rows)
                    sim.inject("drop", conn=sim_conn_of(sim, c, 0))
                    await asyncio.sleep(1.0)
                    resumed = asyncio.create_task(consume(stream.live(url, api_key=pro, channels=["quotes"],
                                                                      resume=first_part.positions[-1]), second_part))
                    tasks.append(resumed)
                    await asyncio.sleep(1.0)
                    # more than 1000 quotes (asserted below): a count, not the 3 s above, in
                    # which a loaded machine's simulator makes fewer
                    await until_stored(c, quotes=1001)
                    await quiesce(sim, c)
                    assert c.publisher is not None
                    final = f"{c.publisher.epoch}.{c.publisher._n}"
                    await wait_for(lambda: final in everything.positions, 120, "the live client to catch up")
                qdb.wait_for_wal()
                last_ts = max(k[0] for k in stored_keys(qdb, "quotes") + stored_keys(qdb, "book_changes"))
                await wait_for(lambda: bool(late.positions) and int(late.positions[-1][2:]) > last_ts, 120,
                               "the delayed stream to pass the last quote and book change")
                # the resumed and the filtered clients hold every stored quote they must (they
                # are cancelled next; waiting on the other clients does not wait for them)
                quotes = set(stored_keys(qdb, "quotes"))
                calls_quotes = set(stored_keys(qdb, "quotes", "WHERE instrument LIKE '%-C'"))
                await wait_for(lambda: set(first_part.keys("quotes") + second_part.keys("quotes")) >= quotes
                               and set(calls.keys("quotes")) >= calls_quotes, 120,
                               "the resumed and the filtered clients to catch up", poll_s=0.2)
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                with contextlib.suppress(ConnectionClosed):
                    await asyncio.wait_for(drain(slow), 60)
                closed = slow.close_code, slow.close_reason
                await slow.close()
    finally:
        stores.close()

    for table in CHANNELS:
        got, want = everything.keys(table), stored_keys(qdb, table)
        if table != "gaps":  # a gap row is published again when it changes (open, then closed)
            assert len(got) == len(set(got)), f"{table}: a row streamed twice"
        assert set(got) == set(want), f"{table}: {len(set(want) - set(got))} stored rows not streamed"
    # the last version of each gap row is the stored one (the store upserts on the same key)
    keys = list(BY_NAME["gaps"].dedup_keys)
    if everything.frames["gaps"]:
        last = pl.concat(everything.frames["gaps"]).unique(subset=keys, keep="last", maintain_order=True)
        stored = {(r[0], *r[1:-2]): (r[-2], r[-1]) for r in qdb.query(
            f"SELECT cast(ts AS long), {', '.join(keys[1:])}, status, cast(end_ts AS long) FROM gaps")}
        streamed = {tuple(r[:-2]): (r[-2], r[-1]) for r in last.select(*keys, "status", "end_ts").rows()}
        assert streamed == stored
    assert len(everything.keys("quotes")) > 1000
    assert everything.interruptions == []
    assert everything.frames["gaps"], "the dropped connection's gap was streamed"
    assert set(calls.keys("quotes")) == set(stored_keys(qdb, "quotes", "WHERE instrument LIKE '%-C'"))
    assert {b.channel for b in calls.batches} == {"quotes"}
    both = first_part.keys("quotes") + second_part.keys("quotes")
    assert len(both) == len(set(both)), "the resumed client saw a row twice"
    assert set(both) == set(stored_keys(qdb, "quotes"))
    assert closed[0] == 4008, closed
    assert "too slow" in (closed[1] or "")
    # the delayed plan: every quote and book change once, none before its time + the delay,
    # in exchange-time order
    for table in ("quotes", "book_changes"):
        got = late.keys(table)
        assert len(got) == len(set(got))
        assert set(got) == set(stored_keys(qdb, table))
    assert late.batches == []
    assert any(len(m.parts) == 2 for m in late.merged), "quotes and book changes in one message"
    stamps: list[int] = []
    for m in late.merged:
        in_order = m.frame().get_column("ts").to_list()
        assert m.received_ns // 1000 >= max(in_order) + DELAY_S * 1_000_000
        stamps += in_order
    assert stamps == sorted(stamps)
    # replay of the same hour: every stored row in exchange-time order across channels
    # (after the servers above are gone: a fresh API over the same stores)
    await _replay_equals_stored(tmp_path, qdb, postgres_clean, pro)


async def _replay_equals_stored(tmp_path: Path, qdb: QuestDBHandle, warm: WarmHandle, key: str) -> None:
    """Replay of quotes and trades (``merged`` messages), Arrow and JSON: every stored row
    once, in exchange-time order; resumed from a position in the middle: the rest, no row
    twice; at xN speed: no message before its exchange time / N after the start."""
    settings = settings_for(qdb, warm, tmp_path / "replay")
    settings = settings.model_copy(update={"stream": settings.stream.model_copy(update={"replay_page_rows": 1000})})
    stores = Stores(settings)
    try:
        lo = min(k[0] for k in stored_keys(qdb, "quotes"))
        hi = max(k[0] for k in stored_keys(qdb, "trades") + stored_keys(qdb, "quotes")) + 1
        async with serving(settings, stores) as (url, _app):
            got, as_json, first, rest, paced = Collect(), Collect(), Collect(), Collect(), Collect()
            await consume(stream.replay(url, api_key=key, start=lo, end=hi, channels=["quotes", "trades"]), got)
            await consume(stream.replay(url, api_key=key, start=lo, end=hi, channels=["quotes", "trades"],
                                        format="json"), as_json)
            # stop after a few messages, resume from the last position seen
            await consume(stream.replay(url, api_key=key, start=lo, end=hi, channels=["quotes", "trades"]), first,
                          stop_after=len(got.merged) // 2)
            await consume(stream.replay(url, api_key=key, start=lo, end=hi, channels=["quotes", "trades"],
                                        resume=first.positions[-1]), rest)
            speed = (hi - lo) / 1e6 / 2.0  # the whole range in about 2 s
            t_asked = time.time_ns() // 1000
            await consume(stream.replay(url, api_key=key, start=lo, end=hi, channels=["quotes", "trades"],
                                        speed=speed), paced)
        for table in ("quotes", "trades"):
            want = stored_keys(qdb, table, f"WHERE ts >= {lo} AND ts < {hi}")
            assert sorted(got.keys(table)) == sorted(want)
            assert got.keys(table) == as_json.keys(table)
            assert sorted(paced.keys(table)) == sorted(want)
        assert got.batches == [], "several channels come as merged messages"
        assert len(got.merged) > 3
        ordered = pl.concat([m.frame() for m in got.merged], how="diagonal_relaxed")
        stamps = ordered.get_column("ts").to_list()
        assert stamps == sorted(stamps), "replay is not in exchange-time order"
        assert ordered.equals(pl.concat([m.frame() for m in as_json.merged], how="diagonal_relaxed"))
        assert got.positions[-1] == f"r.{hi}"
        # resumed: every row once across the two streams (what the first one got up to
        # its last position, then the second)
        cut = int(first.positions[-1][2:])
        upto = Collect()
        for m in first.merged[: max(i for i, m in enumerate(first.merged) if m.position is not None) + 1]:
            upto.add(m)
        for table in ("quotes", "trades"):
            both = upto.keys(table) + rest.keys(table)
            assert sorted(both) == sorted(got.keys(table)), f"{table}: a row lost or repeated across the resume"
            assert all(k[0] >= cut for k in rest.keys(table))
        # paced: no message arrives before its time
        for m in paced.merged:
            first_ts = min(int(f.get_column("ts")[0]) for _, f in m.parts)
            assert m.received_ns // 1000 >= t_asked + (first_ts - lo) / speed
    finally:
        stores.close()
