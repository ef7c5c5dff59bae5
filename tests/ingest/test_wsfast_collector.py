"""The fast receive path (``ingest.wsfast``) in the real collector, over real sockets
against the simulator, into a real QuestDB: frames arrive through it, a close frame
from the exchange and an aborted socket end the connection as before (``last_error``,
the disconnect gap, reconnect), and every frame received before a close is journaled
and stored."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.test_collector import (
    INFLIGHT_US,
    collector_settings,
    quiesce,
    running,
    sim_config,
    sim_conn_of,
    stored_gaps,
    stored_quotes,
    wait_for,
)
from tickarchive.ingest.wsfast import FastClientConnection
from tickarchive.loadtest.sim import Simulator
from tickarchive.store.stack.handles import QuestDBHandle


async def test_frames_flow_through_the_fast_path_and_closes_reconnect(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            # the market data comes through the fast path
            # (the deadlines only bound a failure)
            await wait_for(lambda: all(_fast_frames(d) > 100 for d in c.drivers), 60, "100 frames per fast path")
            # 1. the exchange closes with a close frame (1008, as Deribit does for a slow
            #    reader): the frames it wrote before it are all journaled and stored
            closed = sim.inject("too_slow", conn=sim_conn_of(sim, c, 0))
            await wait_for(lambda: c.drivers[0].connects >= 2 and c.all_subscribed(), 60, "c0 back")
            assert "1008" in c.drivers[0].last_error, c.drivers[0].last_error
            await wait_for(lambda: _fast_frames(c.drivers[0]) > 10, 60, "frames on c0's new connection")
            # 2. the socket is aborted (no close frame)
            dropped = sim.inject("drop", conn=sim_conn_of(sim, c, 1))
            await wait_for(lambda: c.drivers[1].connects >= 2 and c.all_subscribed(), 60, "c1 back")
            await wait_for(lambda: _fast_frames(c.drivers[1]) > 10, 60, "frames on c1's new connection")
            await wait_for(lambda: sum(d.frames for d in c.drivers) > 1000, 60, "1000 frames in all")
            await quiesce(sim, c)
            frames = sum(d.frames for d in c.drivers)
        qdb.wait_for_wal()

        gaps = [g for g in stored_gaps(qdb) if g["kind"] == "disconnect"]
        assert {g["connection"] for g in gaps} == {"c0", "c1"}
        for f in (closed, dropped):
            assert any(g["start_us"] - INFLIGHT_US <= f.start_us <= g["end_us"] for g in gaps), f
        quotes = stored_quotes(qdb)
        # every quote the simulator wrote to a socket (status "sent": not discarded by the
        # slow-reader close) is stored, but for what died in the aborted socket
        sent = sim.send_log.keys("quotes")
        assert set(quotes) <= sent
        for inst, ts in sent - set(quotes):
            g1 = [g for g in gaps if g["connection"] == "c1"]
            assert any(g["start_us"] - INFLIGHT_US <= ts <= g["end_us"] for g in g1), (inst, ts)
        assert c.journal.acked_seq == c.journal.last_seq
        assert frames > 1000


def _fast_frames(driver: object) -> int:
    """Frames the driver's current connection received through the fast path."""
    ws = getattr(driver, "_ws", None)
    return ws.fast_frames if isinstance(ws, FastClientConnection) else 0
