"""Each fault is visible on the wire AND in the send log."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tickarchive.loadtest.errors import FaultSpecError
from tickarchive.loadtest.sim import FaultSpec, SimConfig, parse_fault_spec
from tickarchive.loadtest.sim import sendlog as sl

from .conftest import Client, client, running, until

MALFORMED_TICKER = '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH'
"""The first malformed frame (a truncated ticker)."""


async def _subscribe_all(c: Client, books: bool = True, tickers: bool = True) -> list[str]:
    names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
    channels = ["trades.option.ETH.100ms"]
    channels += [f"ticker.{n}.100ms" for n in names] if tickers else []
    channels += [f"book.{n}.100ms" for n in names] if books else []
    reply = await c.call("public/subscribe", {"channels": channels})
    assert reply["result"] == channels
    return names


def test_fault_spec_parsing() -> None:
    spec = parse_fault_spec("silence:conn=c2,seconds=1.5@30")
    assert spec == FaultSpec("silence", {"conn": "c2", "seconds": "1.5"}, 30.0)
    assert spec.conn == "c2"
    assert spec.float_param("seconds", 0) == 1.5
    assert parse_fault_spec("drop").conn == "all"
    with pytest.raises(FaultSpecError, match="unknown fault kind 'explode'"):
        parse_fault_spec("explode")
    with pytest.raises(FaultSpecError, match="unknown parameter"):
        parse_fault_spec("drop:seconds=3")
    with pytest.raises(FaultSpecError, match="is not a number"):
        parse_fault_spec("silence:seconds=soon")
    with pytest.raises(FaultSpecError, match="mode must be"):
        parse_fault_spec("reject:mode=maybe")


async def test_drop(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        await _subscribe_all(c)
        await c.collect(0.3)
        rec = sim.inject("drop", conn="c1")
        with pytest.raises(ConnectionClosed):
            await c.collect(60.0)  # closed at once; the deadline only bounds a failure
        assert c.ws.close_code == 1006  # no close frame: the TCP connection was aborted
        async with asyncio.timeout(60):  # the simulator's side of the socket closes too
            await sim.connections["c1"].ws.wait_closed()
    assert rec.kind == "drop"
    assert rec.connection == "c1"
    assert rec.start_us == rec.end_us
    assert [f.kind for f in sim.send_log.faults] == ["drop"]
    closed = sim.send_log.connections["c1"]
    assert closed["close_code"] == 1006
    assert rec.start_us <= closed["closed_us"]
    # nothing the client did receive is missing from 'sent'
    got = {
        (n["params"]["data"]["instrument_name"], n["params"]["data"]["timestamp"] * 1000)
        for n in c.channel_notes("ticker.")
    }
    assert got <= sim.send_log.keys("quotes", connection="c1")
    assert sim.connections["c1"].closed


async def test_silence_keeps_socket_open_and_logs_withheld_frames(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        await _subscribe_all(c)
        await c.collect(0.3)
        rec = sim.inject("silence", conn="c1", seconds=0.6)
        end_us = rec.end_us
        assert end_us is not None
        await c.collect(1.2)

        def sent_after_the_silence() -> bool:  # (the send log is read once the silence ended)
            return time.time_ns() // 1000 > end_us and any(
                r["wall_us"] > end_us for r in sim.send_log.rows("quotes", status=sl.SENT, connection="c1")
            )

        # a condition, not more time: on a loaded machine 0.6 s after the silence may pass
        # before the simulator writes again (the deadline only bounds a failure)
        await until(sent_after_the_silence, 60.0, "a quote written after the silence")
        assert (await c.call("public/unsubscribe_all"))["result"] == "ok"  # the socket stayed open
    assert end_us - rec.start_us == 600_000
    silenced = sim.send_log.rows("quotes", status=sl.SILENCED, connection="c1")
    assert len(silenced) > 10
    assert all(rec.start_us <= r["wall_us"] <= end_us + 50_000 for r in silenced)
    # nothing generated inside the window was written: a frame written inside it was
    # generated before it started (queued then, or a write in progress: on a loaded machine
    # the writer can run well after the flush, so the time of the write alone cannot tell),
    # and something was written after it
    sent = sim.send_log.rows("quotes", status=sl.SENT, connection="c1")
    assert not [r for r in sent if rec.start_us < r["wall_us"] < end_us and r["ts_us"] > rec.start_us]
    assert [r for r in sent if r["wall_us"] > end_us]
    # none of the withheld quotes reached the client; everything sent did
    got = {
        (n["params"]["data"]["instrument_name"], n["params"]["data"]["timestamp"] * 1000)
        for n in c.channel_notes("ticker.")
    }
    assert not got & sim.send_log.keys("quotes", status=sl.SILENCED)
    assert got == sim.send_log.keys("quotes", status=sl.SENT)


async def test_skip_book_breaks_the_chain_once(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        names = await _subscribe_all(c, tickers=False)
        await c.collect(0.3)
        target = names[len(names) // 2]
        rec = sim.inject("skip_book", instrument=target, count=2)
        # until the change after the two withheld ones arrived: the break in the chain (a
        # condition, not 0.3 s more; the deadline only bounds a failure)
        await c.collect(60.0, until=lambda _notes: rec.end_us is not None and bool(_breaks(c, target)))
    breaks = _breaks(c, target)
    assert len(breaks) == 1
    skipped = sim.send_log.rows("book_changes", status=sl.SKIPPED)
    assert [r["instrument"] for r in skipped] == [target, target]
    a, b = breaks[0]
    assert [r["prev_change_id"] for r in skipped] == [a["change_id"], skipped[0]["change_id"]]
    assert b["prev_change_id"] == skipped[1]["change_id"]
    assert rec.instruments == (target,)
    assert rec.end_us is not None
    assert str(skipped[0]["change_id"]) in rec.detail


def _breaks(c: Client, target: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Consecutive book messages of ``target`` received whose change_id chain breaks."""
    msgs = [n["params"]["data"] for n in c.channel_notes(f"book.{target}.")]
    return [(a, b) for a, b in itertools.pairwise(msgs) if b["prev_change_id"] != a["change_id"]]


async def test_skip_trades_leaves_a_trade_seq_gap_that_history_fills(cfg: SimConfig) -> None:
    async with running(cfg.replace(trades_per_s=100)) as sim, client(sim) as c:
        await _subscribe_all(c, books=False, tickers=False)
        await c.collect(0.2)
        rec = sim.inject("skip_trades", count=3)
        await c.collect(60.0, until=lambda _notes: rec.end_us is not None)  # the deadline only bounds a failure
        await c.collect(0.3)
    skipped = sim.send_log.rows("trades", status=sl.SKIPPED)
    assert len(skipped) == 3
    wire = [t for n in c.channel_notes("trades.") for t in n["params"]["data"]]
    wire_ids = {t["trade_id"] for t in wire}
    seqs: dict[str, list[int]] = defaultdict(list)
    for t in wire:
        seqs[t["instrument_name"]].append(t["trade_seq"])
    history = {t["trade_id"]: t for t in sim.history.all_trades()}
    for row in skipped:
        assert row["trade_id"] not in wire_ids
        assert history[row["trade_id"]]["trade_seq"] == row["trade_seq"]  # backfillable
        later = [s for s in seqs[row["instrument"]] if s > row["trade_seq"]]
        if later:  # the gap is visible on the wire
            assert row["trade_seq"] not in seqs[row["instrument"]]
    assert set(rec.instruments) == {r["instrument"] for r in skipped}


async def test_malformed_unknown_channel_and_extra_fields(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        await _subscribe_all(c, books=False)
        sim.inject("malformed", count=2)
        sim.inject("unknown_channel", count=1)
        sim.inject("extra_fields", count=3)
        # until the 3 notifications with an unknown field arrived (the next 3 generated: a
        # count, not 0.5 s of stream; the deadline only bounds a failure)
        await c.collect(60.0, until=lambda notes: len(_with_unknown(notes)) >= 3)
        assert (await c.call("public/unsubscribe_all"))["result"] == "ok"
    bad = [t for t in c.raw if not t.startswith("{") or not t.endswith("}")]
    assert bad == [
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH',
        "not json at all",
    ]
    unknown = c.channel_notes("deribit_volatility_index.")
    assert len(unknown) == 1
    assert unknown[0]["params"]["data"]["index_name"] == "eth_usd"
    extra = _with_unknown(c.notes)
    assert len(extra) == 3
    assert sim.send_log.control_frames == {"malformed": 2, "unknown_channel": 1}
    assert [f.kind for f in sim.send_log.faults] == ["malformed", "unknown_channel", "extra_fields"]
    # frames with extra fields are still accounted as sent quotes/trades
    ticks = {
        (n["params"]["data"]["instrument_name"], n["params"]["data"]["timestamp"] * 1000)
        for n in c.channel_notes("ticker.")
    }
    assert ticks == sim.send_log.keys("quotes")


def _with_unknown(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in notes if n.get("method") == "subscription" and _has_unknown(n["params"]["data"])]


def _has_unknown(data: Any) -> bool:
    if isinstance(data, list):
        return any("sim_unknown_field" in t for t in data)
    return "sim_unknown_field" in data


async def test_heartbeat_withhold_and_delay(cfg: SimConfig) -> None:
    """No test_request while withheld; a delayed one comes late. Asserted as the earliest
    time a test_request can arrive (measured on the clock the simulator uses, from before
    each injection), not as "none in a window of N seconds": a slow machine only makes it
    later. heartbeat_scale=0.1: interval 10 is a test_request a second, and a second to
    answer it (0.2 s was too short on a loaded machine)."""
    def heartbeat(notes: list[dict[str, Any]]) -> bool:
        return any(n.get("method") == "heartbeat" for n in notes)

    async with running(cfg.replace(heartbeat_scale=0.1)) as sim, client(sim) as c:
        await c.call("public/test")  # the simulator has the connection
        t0 = time.monotonic()
        rec = sim.inject("heartbeat_withhold", conn="c1", seconds=2.5)  # 2 ticks and more
        await c.call("public/set_heartbeat", {"interval": 10})
        await c.collect(60.0, until=heartbeat)  # the deadline only bounds a failure
        assert heartbeat(c.notes)
        assert time.monotonic() - t0 >= 2.5  # none before the withhold ended
        c.notes.clear()
        t1 = time.monotonic()
        sim.inject("heartbeat_delay", conn="c1", seconds=1.5, duration=60)  # before the next tick, 1 s away
        await c.call("public/test")  # the answer
        await c.collect(60.0, until=heartbeat)
        assert heartbeat(c.notes)
        assert time.monotonic() - t1 >= 1.5  # the next tick (at most 1 s away) came 1.5 s late
    assert rec.end_us is not None
    assert rec.end_us - rec.start_us == 2_500_000
    assert [f.kind for f in sim.send_log.faults] == ["heartbeat_withhold", "heartbeat_delay"]


@pytest.mark.parametrize("mode", ["error", "omit"])
async def test_reject_subscriptions(cfg: SimConfig, mode: str) -> None:
    async with running(cfg) as sim, client(sim) as c:
        rec = sim.inject("reject", seconds=0.5, mode=mode)
        reply = await c.call("public/subscribe", {"channels": ["platform_state", "trades.option.ETH.100ms"]})
        if mode == "error":
            assert reply["error"] == {"message": "retry", "code": 10040}
        else:
            assert reply["result"] == []
        assert sim.subs == {}
        assert rec.end_us is not None
        # the fault is defined by its duration: wait for its end, then it is granted (a
        # retry or two covers the simulator's monotonic clock against this wall clock)
        await asyncio.sleep(max(0.0, rec.end_us / 1e6 - time.time()))
        for _ in range(25):
            if (await c.call("public/subscribe", {"channels": ["platform_state"]})).get("result") == ["platform_state"]:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the subscription is still refused after the fault ended")
        assert time.time_ns() // 1000 >= rec.end_us
    assert rec.instruments == ("platform_state", "trades.option.ETH.100ms")
    assert rec.end_us is not None
    assert rec.end_us - rec.start_us == 500_000


async def test_too_slow_fault_closes_with_reason(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        await _subscribe_all(c)
        await c.collect(0.2)
        sim.inject("too_slow", conn="c1")
        with pytest.raises(ConnectionClosed):
            await c.collect(60.0)  # closed at once; the deadline only bounds a failure
        assert c.ws.close_code == 1008
        assert c.ws.close_reason == "connection_too_slow"
    assert [f.kind for f in sim.send_log.faults] == ["too_slow"]


async def test_slow_reader_is_disconnected_not_buffered(tmp_path) -> None:
    from .conftest import base_config

    cfg = base_config(tmp_path, rate_per_s=4000, instruments=200, send_queue_frames=300, write_limit_bytes=16_384)
    async with running(cfg) as sim, client(sim, max_queue=1) as c:
        await _subscribe_all(c)
        await c.collect(60.0, until=lambda notes: len(notes) >= 50)  # data flows (the deadlines bound a failure)
        c.ws.transport.pause_reading()  # a reader that stopped reading
        async with asyncio.timeout(120):  # closed: the close frame is stuck behind the backlog
            await sim.connections["c1"].ws.wait_closed()  # so close_timeout aborts the socket
        assert sim.connections["c1"].close_request == (1008, "connection_too_slow")
        assert sim.connections["c1"].pending <= 300
        c.ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed):
            await c.collect(60.0)
    slow = sim.send_log.count("quotes", sl.TOO_SLOW) + sim.send_log.count("book_changes", sl.TOO_SLOW)
    assert slow >= 300


async def test_maintenance_locks_platform_and_stops_data(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        await _subscribe_all(c, books=False)
        await c.call("public/subscribe", {"channels": ["platform_state"]})
        await c.collect(0.2)
        rec = sim.inject("maintenance", seconds=0.5)
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"{sim.http_url}/public/status")).json()["result"]
        assert status == {"locked": "true", "locked_indices": ["eth_usd"]}
        # locked, unlocked, then a ticker after the unlock (conditions, not 0.3 s more of
        # stream; the deadline only bounds a failure)
        await c.collect(60.0, until=_unlocked_and_quoting)
    states = _platform_states(c.notes)
    assert [s for _, s in states] == [False, True, False]
    unlocked_at = states[2][0]
    assert rec.end_us is not None
    assert rec.end_us - rec.start_us >= 500_000
    # no market data was generated (so none logged) inside the window; some after it
    quotes = sim.send_log.rows("quotes", status=None)
    # (ts_us has ms resolution: a tick in the millisecond of the unlock may round below it)
    assert not [q for q in quotes if rec.start_us + 30_000 < q["ts_us"] < rec.end_us - 1_000]
    assert any(n["params"]["channel"].startswith("ticker.") for n in c.notes[unlocked_at:])


def _unlocked_and_quoting(notes: list[dict[str, Any]]) -> bool:
    states = _platform_states(notes)
    return len(states) == 3 and any(n["params"]["channel"].startswith("ticker.") for n in notes[states[2][0]:])


def _platform_states(notes: list[dict[str, Any]]) -> list[tuple[int, bool]]:
    return [
        (i, n["params"]["data"]["locked"])
        for i, n in enumerate(notes)
        if n.get("params", {}).get("channel") == "platform_state"
    ]


async def test_faults_via_http_control_and_cli_schedule(cfg: SimConfig) -> None:
    # the scheduled silence strikes 2 s after the start: the client has subscribed by then
    # (at 0.2 s a loaded machine was still connecting, and nothing was silenced)
    scheduled = (parse_fault_spec("silence:seconds=0.3@2"),)
    async with running(cfg.replace(faults=scheduled)) as sim, client(sim) as c:
        await _subscribe_all(c, books=False)

        def silence_over(_notes: list[dict[str, Any]]) -> bool:
            ends = [f.end_us for f in sim.send_log.faults if f.kind == "silence"]
            return bool(ends) and time.time_ns() // 1000 > (ends[0] or 0)

        await c.collect(60.0, until=silence_over)  # the deadline only bounds a failure
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{sim.control_url}/fault/malformed", params={"conn": "c1", "count": "1"})
            assert r.status_code == 200
            assert r.json()["kind"] == "malformed"
            bad = await http.get(f"{sim.control_url}/fault/drop", params={"conn": "c9"})
            assert bad.status_code == 400
            assert "no open connection 'c9'" in bad.json()["error"]
            faults = (await http.get(f"{sim.control_url}/faults")).json()
            conns = (await http.get(f"{sim.control_url}/connections")).json()
        await c.collect(60.0, until=lambda _notes: MALFORMED_TICKER in c.raw)  # until it arrived
        await c.call("public/unsubscribe_all")  # (reads the rest: no backlog delays the close)
    assert [f["kind"] for f in faults] == ["silence", "malformed"]
    assert faults[0]["end_us"] - faults[0]["start_us"] == 300_000
    assert [x["id"] for x in conns] == ["c1"]
    assert c.raw.count(MALFORMED_TICKER) == 1
    assert sim.send_log.count("quotes", sl.SILENCED) > 0
