"""The history endpoints serve exactly the trades the simulator generated."""

from __future__ import annotations

from typing import Any

import httpx

from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim.history import TradeHistory

from .conftest import client, running


async def _page_all(http: httpx.AsyncClient, url: str, params: dict[str, Any], sorting: str) -> list[dict[str, Any]]:
    """Page through a time range the way a backfill does, with small pages."""
    out: list[dict[str, Any]] = []
    start, end = params["start_timestamp"], params["end_timestamp"]
    seen: set[str] = set()
    while True:
        r = await http.get(
            url, params={**params, "start_timestamp": start, "end_timestamp": end, "count": 7, "sorting": sorting}
        )
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert set(result) == {"trades", "has_more"}
        page = result["trades"]
        assert len(page) <= 7
        out.extend(t for t in page if t["trade_id"] not in seen)
        seen.update(t["trade_id"] for t in page)
        if not result["has_more"]:
            return out
        # advance the boundary to the last timestamp (trades may share a millisecond)
        if sorting == "asc":
            start = page[-1]["timestamp"]
        else:
            end = page[-1]["timestamp"]


async def test_history_paging_returns_exactly_the_generated_trades(cfg: SimConfig) -> None:
    async with running(cfg.replace(trades_per_s=150)) as sim, client(sim) as c:
        await c.call("public/subscribe", {"channels": ["trades.option.ETH.100ms"]})
        # until more than 150 trades were generated (a count, not 1.5 s: the simulator makes
        # its trades per step, and a loaded machine steps fewer times a second)
        await c.collect(120.0, until=lambda _notes: len(sim.history) > 150)
        await c.call("public/unsubscribe_all")
        generated = sim.history.all_trades()
        assert len(generated) > 150
        lo, hi = generated[0]["timestamp"], generated[-1]["timestamp"]
        wire = [t for n in c.channel_notes("trades.") for t in n["params"]["data"]]
        async with httpx.AsyncClient() as http:
            by_cur = f"{sim.http_url}/public/get_last_trades_by_currency_and_time"
            params = {"currency": "ETH", "kind": "option", "start_timestamp": lo, "end_timestamp": hi}
            asc = await _page_all(http, by_cur, params, "asc")
            desc = await _page_all(http, by_cur, params, "desc")
            assert [t["trade_id"] for t in asc] == [t["trade_id"] for t in generated]
            assert sorted(t["trade_id"] for t in desc) == sorted(t["trade_id"] for t in generated)
            assert asc == generated  # identical objects, field for field
            # every trade the client saw on the wire is in the history, identical
            assert {t["trade_id"]: t for t in asc}.items() >= {t["trade_id"]: t for t in wire}.items()

            # per instrument: consecutive trade_seq from 1, by time and by seq
            busiest = max(
                {t["instrument_name"] for t in generated},
                key=lambda n: sum(t["instrument_name"] == n for t in generated),
            )
            mine = [t for t in generated if t["instrument_name"] == busiest]
            by_inst = f"{sim.http_url}/public/get_last_trades_by_instrument_and_time"
            got = await _page_all(
                http, by_inst, {"instrument_name": busiest, "start_timestamp": lo, "end_timestamp": hi}, "asc"
            )
            assert got == mine
            assert [t["trade_seq"] for t in got] == list(range(1, len(mine) + 1))
            r = await http.get(
                f"{sim.http_url}/public/get_last_trades_by_instrument",
                params={"instrument_name": busiest, "start_seq": 2, "end_seq": 3, "sorting": "asc"},
            )
            assert [t["trade_seq"] for t in r.json()["result"]["trades"]] == [2, 3][: len(mine) - 1]

            too_big = await http.get(by_cur, params={**params, "count": 1001})
            assert too_big.status_code == 400
            assert too_big.json()["error"]["data"] == {"reason": "must be between 1 and 1000", "param": "count"}
            default = await http.get(by_cur, params=params)
            page = default.json()["result"]
            assert len(page["trades"]) == 10
            assert page["has_more"] is True
            assert page["trades"] == generated[::-1][:10]  # default: newest first
        # the same methods over the WebSocket
        ws = await c.call("public/get_last_trades_by_currency_and_time", {**params, "count": 1000, "sorting": "asc"})
        assert ws["result"]["trades"] == generated
        assert ws["result"]["has_more"] is False


def test_trade_history_pages_by_time_with_shared_milliseconds() -> None:
    h = TradeHistory()
    for i in range(5):
        h.add({"instrument_name": "X", "trade_seq": i + 1, "trade_id": f"ETH-{i}", "timestamp": 1000 + i // 2})
    page = h.by_instrument_and_time("X", 1000, 1002, 2, "asc")
    assert [t["trade_id"] for t in page["trades"]] == ["ETH-0", "ETH-1"]
    assert page["has_more"] is True
    page = h.by_instrument_and_time("X", 1001, 1001, 10, "desc")
    assert [t["trade_id"] for t in page["trades"]] == ["ETH-3", "ETH-2"]
    assert page["has_more"] is False
    assert h.by_instrument_and_time("Y", 0, 10**15, 10, "asc") == {"trades": [], "has_more": False}
