"""The simulator's ``poison`` fault: ticker frames whose values no store accepts, on the
wire and in the send log with their own keys."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tickarchive.loadtest.errors import FaultSpecError
from tickarchive.loadtest.sim import FaultSpec, SimConfig
from tickarchive.loadtest.sim.faults import POISON_SHAPES

from .conftest import client, running


def _poison(raw: list[str]) -> list[dict[str, Any]]:
    """The ticker data of the poison frames received (the market model's tickers have greeks)."""
    out = []
    for r in raw:
        msg = orjson.loads(r)
        params = msg.get("params") or {}
        if str(params.get("channel", "")).startswith("ticker.") and "greeks" not in params["data"]:
            out.append(params["data"])
    return out


async def test_poison_frames_on_the_wire_and_in_the_send_log(cfg: SimConfig) -> None:
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        channels = [f"ticker.{n}.100ms" for n in names[:3]]
        assert (await c.call("public/subscribe", {"channels": channels}))["result"] == channels
        rec = sim.inject("poison", conn="c1", bytes=4096)
        await c.collect(60.0, until=lambda _notes: len(_poison(c.raw)) >= len(POISON_SHAPES))  # bounds a failure
    assert rec.kind == "poison"
    poison = _poison(c.raw)
    assert len(poison) == len(POISON_SHAPES)
    ts = [d["timestamp"] for d in poison]
    assert ts[0] < 0  # negative_ts
    assert ts[1] >= 253_402_300_800_000  # far_future_ts: 10000-01-01 or later
    assert poison[2]["best_bid_price"] == "NaN"  # nan_strings
    assert poison[2]["mark_price"] == "nan"
    assert poison[3]["underlying_index"] == "X" * 4096  # huge_field
    assert len(set(ts)) == len(ts)
    # every poison frame is logged 'sent' with its key (instrument, timestamp in µs)
    logged = sim.send_log.keys("quotes", connection="c1")
    for d in poison:
        assert (d["instrument_name"], d["timestamp"] * 1000) in logged


def test_poison_parameters() -> None:
    assert FaultSpec("poison", {"conn": "c1", "count": "8", "bytes": "100"}).int_param("bytes", 1) == 100
    with pytest.raises(FaultSpecError, match="unknown parameter"):
        FaultSpec("poison", {"seconds": "1"})
    with pytest.raises(FaultSpecError, match="bytes must be >= 1"):
        FaultSpec("poison", {"bytes": "0"})
