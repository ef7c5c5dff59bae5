"""Discovery: get_instruments over REST, channel planning and sharding, listings/expiries."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.ingest.test_collector import sim_config
from tickarchive.domain import InstrumentEvent
from tickarchive.ingest.instruments import InstrumentSet
from tickarchive.loadtest.sim import Simulator
from tickarchive.settings import DeribitSettings
from tickarchive.venues.deribit.discovery import LIVE_STATES, ChannelPlan, fetch_instruments, rest_url_of_ws, shard_of

PLAN = ChannelPlan(("ETH",), ("option",), "100ms", 3, index_names=("eth_usd",))


def test_layout_shards_instruments_stably_with_ticker_and_book_together() -> None:
    names = [f"ETH-27DEC26-{k}-{cp}" for k in range(1000, 6000, 250) for cp in "CP"]
    layout = PLAN.layout(names)
    assert len(layout) == 3
    assert layout[0][:4] == [
        "trades.option.ETH.100ms",
        "instrument.state.option.ETH",
        "deribit_price_index.eth_usd",
        "platform_state",
    ]
    everything = [ch for shard in layout for ch in shard]
    assert len(everything) == len(set(everything)) == 4 + 2 * len(names)
    for name in names:
        i = shard_of(name, 3)
        assert f"ticker.{name}.100ms" in layout[i]
        assert f"book.{name}.100ms" in layout[i]
    assert all(len(shard) > 5 for shard in layout)  # spread, not piled on one connection
    assert PLAN.layout(reversed(names)) == layout  # order-independent
    plan = ChannelPlan.from_settings(DeribitSettings(currencies=("ETH", "BTC"), kinds=("option", "future")))
    assert plan.connections == 4
    assert "trades.future.BTC.100ms" in plan.global_channels()
    assert "instrument.state.option.BTC" in plan.global_channels()


def _ev(name: str, state: str, kind: str | None = "option") -> InstrumentEvent:
    return InstrumentEvent(name, 1, 1, state, kind=kind, base_currency="ETH" if kind else None)


def test_instrument_set_follows_listings_and_expiries() -> None:
    s = InstrumentSet(PLAN, LIVE_STATES)
    added, removed = s.reconcile([_ev("A", "open"), _ev("B", "open"), _ev("F", "open", kind="future")])
    assert (added, removed) == (["A", "B"], [])  # a future is not a configured kind
    assert s.on_state(_ev("C", "open", kind=None)) == (["C"], [])  # instrument.state carries no kind
    assert s.on_state(_ev("A", "settlement", kind=None)) == ([], ["A"])
    assert s.on_state(_ev("A", "delivered", kind=None)) == ([], [])
    assert s.on_state(_ev("B", "locked", kind=None)) == ([], [])  # temporary: stays subscribed
    assert s.live_names() == {"B", "C"}
    added, removed = s.reconcile([_ev("B", "open"), _ev("D", "open")])
    assert (added, removed) == (["D"], ["C"])
    assert s.counts_by_kind() == {"option": 2}


async def test_fetch_instruments_from_the_simulator(tmp_path: Path) -> None:
    async with Simulator(sim_config(tmp_path, instruments=30)) as sim:
        assert rest_url_of_ws(sim.ws_url) == sim.http_url
        assert rest_url_of_ws("wss://www.deribit.com/ws/api/v2") == "https://www.deribit.com/api/v2"
        async with httpx.AsyncClient() as client:
            (got,) = await fetch_instruments(client, sim.http_url, ["ETH"], ["option"])
        listed = {i.name: i for i in sim.model.listed()} if sim.model else {}
        assert {e.instrument for e in got.events} == set(listed)
        e = got.events[0]
        inst = listed[e.instrument]
        assert (e.kind, e.strike, e.expiration_us, e.state) == ("option", inst.strike, inst.expiry_ms * 1000, "open")
        assert got.body.startswith(b'{"jsonrpc":"2.0"')  # the raw body: journaled as received
