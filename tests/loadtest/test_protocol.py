"""JSON-RPC round trips over a real WebSocket and over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tickarchive.loadtest.sim import SimConfig

from .conftest import START_MS, client, running, until


async def test_get_instruments_ws_and_http_agree(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        ws_reply = await c.call("public/get_instruments", {"currency": "ETH", "kind": "option", "expired": False})
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{sim.http_url}/public/get_instruments", params={"currency": "ETH", "kind": "option"})
    assert r.status_code == 200
    http_reply = r.json()
    assert set(http_reply) == {"jsonrpc", "result", "usIn", "usOut", "usDiff", "testnet"}
    assert set(ws_reply) == {"jsonrpc", "id", "result", "usIn", "usOut", "usDiff", "testnet"}
    assert ws_reply["testnet"] is False
    assert ws_reply["usDiff"] == ws_reply["usOut"] - ws_reply["usIn"]
    ws_names = [i["instrument_name"] for i in ws_reply["result"]]
    assert ws_names == [i["instrument_name"] for i in http_reply["result"]]
    assert 55 <= len(ws_names) <= 70  # instruments=60, rounded per expiry
    first = ws_reply["result"][0]
    assert first["kind"] == "option"
    assert first["base_currency"] == "ETH"
    assert first["tick_size"] == 0.0001
    assert first["tick_size_steps"] == [{"above_price": 0.005, "tick_size": 0.0005}]
    # 10+ expiries at 08:00 UTC, the first the next day (START is 09:00 UTC)
    expiries = sorted({i["expiration_timestamp"] for i in ws_reply["result"]})
    assert len(expiries) >= 10
    assert expiries[0] == START_MS + 23 * 3_600_000
    periods = {i["settlement_period"] for i in ws_reply["result"]}
    assert periods == {"day", "week", "month"}
    calls = sum(1 for i in ws_reply["result"] if i["option_type"] == "call")
    assert calls * 2 == len(ws_names)
    assert ws_names[0].startswith("ETH-25NOV26-")


async def test_full_size_chain_has_about_800_options(tmp_path) -> None:
    from .conftest import base_config

    async with running(base_config(tmp_path, instruments=800, rate_per_s=10)) as sim, client(sim) as c:
        reply = await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"})
    assert 600 <= len(reply["result"]) <= 1000  # Deribit's ETH chains: 688 (2026-01-01), 932 (2026-08-22)


async def test_get_time_and_test_and_unknown_method(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        t = await c.call("public/get_time")
        assert abs(t["result"] - t["usOut"] // 1000) < 1000
        assert (await c.call("public/test"))["result"] == {"version": "1.2.26"}
        missing = await c.call("public/no_such_method")
        assert missing["error"] == {"message": "Method not found", "code": -32601}
        private = await c.call("private/get_positions", {"currency": "ETH"})
        assert private["error"]["code"] == 13009
        await c.ws.send("this is not json")
        await c.ws.send(orjson.dumps({"jsonrpc": "2.0", "method": "public/test"}).decode())  # no id
        replies = [orjson.loads(await c.ws.recv()) for _ in range(2)]
        assert replies[0]["error"] == {"message": "Parse error", "code": -32700}
        assert replies[1]["error"] == {"message": "Invalid Request", "code": -32600}
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{sim.http_url}/public/get_time")
            assert r.status_code == 200
            assert isinstance(r.json()["result"], int)
            bad = await http.get(f"{sim.http_url}/public/get_instruments")
            assert bad.status_code == 400
            assert bad.json()["error"] == {
                "message": "Invalid params",
                "code": -32602,
                "data": {"reason": "missing", "param": "currency"},
            }


async def test_subscribe_unsubscribe_results_are_channel_lists(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        wanted = [f"ticker.{names[0]}.100ms", f"book.{names[1]}.100ms", "trades.option.ETH.100ms", "platform_state"]
        sub = await c.call("public/subscribe", {"channels": wanted})
        assert sub["result"] == wanted
        assert sim.connections["c1"].session.channels == set(wanted)
        unsub = await c.call("public/unsubscribe", {"channels": [wanted[0], "ticker.ETH-1JAN30-1-C.100ms"]})
        assert unsub["result"] == [wanted[0]]
        assert sim.connections["c1"].session.channels == set(wanted[1:])
        assert (await c.call("public/unsubscribe_all"))["result"] == "ok"
        assert sim.subs == {}


async def test_subscribe_errors(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        too_many = [f"ticker.{n}.100ms" for n in names] * 9
        big = await c.call("public/subscribe", {"channels": [f"{ch}#{i}" for i, ch in enumerate(too_many[:501])]})
        assert big["error"] == {"message": "request entity too large", "code": -32600}
        unknown = await c.call("public/subscribe", {"channels": ["ticker.ETH-1JAN30-1-C.100ms"]})
        assert unknown["error"]["code"] == -32602
        assert unknown["error"]["data"] == {
            "reason": "invalid channel: ticker.ETH-1JAN30-1-C.100ms",
            "param": "channels",
        }
        raw = await c.call("public/subscribe", {"channels": [f"book.{names[0]}.raw"]})
        assert raw["error"]["code"] == 13778
        assert raw["error"]["message"] == "raw_subscriptions_not_available_for_unauthorized"
        grouped = await c.call("public/subscribe", {"channels": [f"book.{names[0]}.none.10.100ms"]})
        assert grouped["error"]["code"] == -32602
        assert sim.subs == {}


async def test_subscribe_rate_limit_closes_session(cfg: SimConfig) -> None:
    async with running(cfg.replace(subscribe_burst=3, subscribe_rate_per_s=0.5)) as sim, client(sim) as c:
        for _ in range(3):
            assert (await c.call("public/subscribe", {"channels": ["platform_state"]}))["result"] == ["platform_state"]
        limited = await c.call("public/subscribe", {"channels": ["platform_state"]})
        assert limited["error"] == {"message": "too_many_requests", "code": 10028}
        with pytest.raises(ConnectionClosed):
            await c.collect(60.0)  # the close comes at once; the deadline only bounds a failure
        assert c.ws.close_code == 1008
        assert c.ws.close_reason == "too_many_requests"


async def test_heartbeat_test_request_answered_then_closed_when_unanswered(cfg: SimConfig) -> None:
    # heartbeat_scale=0.1: interval 10 means a test_request every second, and a second to
    # answer it (0.2 s was too short for a loaded machine: the answer came after the next
    # tick and the simulator closed the connection)
    async with running(cfg.replace(heartbeat_scale=0.1)) as sim, client(sim) as c:
        low = await c.call("public/set_heartbeat", {"interval": 5})
        assert low["error"]["code"] == -32602
        assert (await c.call("public/set_heartbeat", {"interval": 10}))["result"] == "ok"
        for _ in range(3):  # (the deadlines only bound a failure)
            await c.collect(60.0, until=lambda notes: any(n.get("method") == "heartbeat" for n in notes))
            hb = [n for n in c.notes if n.get("method") == "heartbeat"]
            assert hb == [{"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}]
            c.notes.clear()
            assert (await c.call("public/test"))["result"] == {"version": "1.2.26"}
        # stop answering: the next heartbeat tick closes the connection
        with pytest.raises(ConnectionClosed):
            await c.collect(60.0)
        assert c.ws.close_code == 1000
        assert c.ws.close_reason == "test_request not answered"
        heartbeats = [n for n in c.notes if n.get("method") == "heartbeat"]
        assert len(heartbeats) == 1
        await until(lambda: sim.connections["c1"].closed, 5.0, "the simulator to see the close")


async def test_platform_state_and_index_and_get_index_price(cfg: SimConfig) -> None:
    async with running(cfg.replace(index_interval_ms=100)) as sim, client(sim) as c:
        sub = await c.call("public/subscribe", {"channels": ["platform_state", "deribit_price_index.eth_usd"]})
        assert sub["result"] == ["platform_state", "deribit_price_index.eth_usd"]

        def state_and_two_ticks(_notes: list[dict[str, Any]]) -> bool:  # what is asserted below
            return bool(c.channel_notes("platform_state")) and len(c.channel_notes("deribit_price_index")) >= 2

        await c.collect(60.0, until=state_and_two_ticks)  # the deadline only bounds a failure
        states = c.channel_notes("platform_state")
        assert states[0]["params"]["data"] == {"price_index": "eth_usd", "locked": False}
        index = c.channel_notes("deribit_price_index")
        assert len(index) >= 2
        assert set(index[0]["params"]["data"]) == {"timestamp", "price", "index_name"}
        assert index[0]["params"]["data"]["index_name"] == "eth_usd"
        assert index[1]["params"]["data"]["timestamp"] > index[0]["params"]["data"]["timestamp"]
        assert 2500 < index[0]["params"]["data"]["price"] < 3500
        price = await c.call("public/get_index_price", {"index_name": "eth_usd"})
        assert price["result"]["index_price"] == sim.model.currencies[0].index_price  # type: ignore[union-attr]


async def test_barrier_waits_for_each_connection_to_answer_a_test_request(cfg: SimConfig) -> None:
    """``Simulator.barrier``: a test_request behind everything queued; its answer proves
    the frames before it were read."""
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        await c.call("public/subscribe", {"channels": [f"ticker.{n}.100ms" for n in names[:10]]})
        barrier = asyncio.create_task(sim.barrier(120.0))  # (the deadlines only bound a failure)
        await c.collect(60.0, until=lambda notes: any(n.get("method") == "heartbeat" for n in notes))
        assert not barrier.done()  # not answered yet
        assert (await c.call("public/test"))["result"] == {"version": "1.2.26"}
        assert await barrier == ["c1"]
