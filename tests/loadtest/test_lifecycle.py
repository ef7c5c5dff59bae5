"""Listings and expiries over (accelerated) time, with instrument.state notifications."""

from __future__ import annotations

from tickarchive.loadtest.sim import SimConfig

from .conftest import START_MS, client, running

FIRST_EXPIRY_MS = START_MS + 23 * 3_600_000  # 25 Nov 2026 08:00 UTC


async def test_expiry_settles_delivers_and_lists_a_new_expiry(cfg: SimConfig) -> None:
    # 40 simulated seconds before the first expiry, 20x: it expires ~2 s after start (the
    # client lists and subscribes before that: 0.5 s was too little on a loaded machine,
    # where listing and subscribing can take longer than the simulator's lead)
    fast = cfg.replace(start_ms=FIRST_EXPIRY_MS - 40_000, time_scale=20.0, settle_delay_s=10.0)
    async with running(fast) as sim, client(sim) as c:
        before = (await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"}))["result"]
        expiring = sorted(i["instrument_name"] for i in before if i["expiration_timestamp"] == FIRST_EXPIRY_MS)
        assert expiring
        assert all("-25NOV26-" in n for n in expiring)
        await c.call("public/subscribe", {"channels": ["instrument.state.option.ETH", "instrument.state.any.any"]})
        await c.collect(  # (the deadline only bounds a failure)
            60.0, until=lambda notes: any(n["params"]["data"]["state"] == "delivered" for n in notes if "params" in n)
        )
        await c.call("public/unsubscribe_all")
        after = (await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"}))["result"]
        expired = (await c.call("public/get_instruments", {"currency": "ETH", "kind": "option", "expired": True}))[
            "result"
        ]

    states = [n["params"]["data"] for n in c.channel_notes("instrument.state.option.ETH")]
    assert all(set(s) == {"timestamp", "state", "instrument_name"} for s in states)
    settled = sorted(s["instrument_name"] for s in states if s["state"] == "settlement")
    delivered = sorted(s["instrument_name"] for s in states if s["state"] == "delivered")
    opened = sorted(s["instrument_name"] for s in states if s["state"] == "open")
    assert settled == expiring == delivered
    assert opened
    assert all(n not in {i["instrument_name"] for i in before} for n in opened)
    after_names = {i["instrument_name"] for i in after}
    assert not after_names & set(expiring)
    assert set(opened) <= after_names
    assert expired == []  # delivered instruments are gone
    # a new expiry is listed: the next daily after the last listed daily (spot moving at
    # 20x may also have listed new strikes of the expiries already there)
    before_expiries = {i["expiration_timestamp"] for i in before}
    new_expiries = {i["expiration_timestamp"] for i in after if i["instrument_name"] in opened} - before_expiries
    assert len(new_expiries) == 1
    assert new_expiries.pop() > max(i["expiration_timestamp"] for i in before if i["settlement_period"] == "day")
    # both subscribed channels carried the events; the send log has them all
    assert len(c.channel_notes("instrument.state.any.any")) == len(states)
    logged = sim.send_log.keys("instruments", channel="instrument.state.option.ETH")
    assert logged == {(s["instrument_name"], s["state"], s["timestamp"] * 1000) for s in states}
    # no ticker or book is generated for an instrument once it expired
    assert all(sim.model is not None and n not in sim.model.states for n in expiring)
