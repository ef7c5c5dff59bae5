"""The simulator's frames have the field names and JSON types of real Deribit frames.

References are the real captures in ``tests/fixtures/deribit/real``: option tickers and
books (cryptofeed 2021 capture), trades (nautilus ws_trades / option-combo legs /
history), get_instruments (cryptofeed ETH options, nautilus option), the subscribe reply,
the test_request heartbeat. For each frame kind: every key the simulator sends must
occur in a real frame of that kind (real-only optional keys are allowed to be absent),
the keys present in *every* real frame must be present, and each value's JSON type must
be one the real frames use for that key (nested objects compared the same way).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tests.real import REAL
from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim import native as sim_native

from .conftest import client, running


@pytest.fixture(autouse=True, params=["native", "python"])
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every check runs on the native hot path (``SimEngine``) and the pure-Python one."""
    if request.param == "native" and sim_native.SWITCHED_OFF:
        pytest.skip("TICKARCHIVE_NATIVE=0: the native simulator step is switched off")
    # not built: the native run fails (new_engine raises) rather than skipping
    monkeypatch.setattr(sim_native, "ENABLED", request.param == "native")
    return str(request.param)


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    return "dict"


class Shape:
    """Key sets and JSON types of a set of real objects (nested dicts recursively)."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        assert samples
        self.allowed = set().union(*(s.keys() for s in samples))
        self.required = set.intersection(*(set(s) for s in samples))
        self.types: dict[str, set[str]] = defaultdict(set)
        nested: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in samples:
            for k, v in s.items():
                self.types[k].add(_jtype(v))
                if isinstance(v, dict):
                    nested[k].append(v)
        self.nested = {k: Shape(v) for k, v in nested.items()}

    def check(self, obj: dict[str, Any], where: str) -> list[str]:
        problems = []
        extra = set(obj) - self.allowed
        if extra:
            problems.append(f"{where}: keys never seen in real frames: {sorted(extra)}")
        missing = self.required - set(obj)
        if missing:
            problems.append(f"{where}: keys every real frame has are missing: {sorted(missing)}")
        for k, v in obj.items():
            if k in self.types and _jtype(v) not in self.types[k]:
                problems.append(f"{where}.{k}: type {_jtype(v)}, real frames use {sorted(self.types[k])}")
            if isinstance(v, dict) and k in self.nested:
                problems.extend(self.nested[k].check(v, f"{where}.{k}"))
        return problems


def _capture_frames() -> list[dict[str, Any]]:
    out = []
    for line in (REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0").read_text().splitlines()[2:]:
        if not line.strip():
            continue
        out.append(json.loads(line.split(": ", 1)[1]))
    return out


def _nautilus(name: str) -> Any:
    return json.loads((REAL / "nautilus" / name).read_text())


def _real_instruments() -> list[dict[str, Any]]:
    for line in (REAL / "cryptofeed_2021-07-22_DERIBIT.0").read_text().splitlines():
        if "currency=ETH" in line:
            body = json.loads(line.split(": ", 1)[1])
            return [i for i in body["result"] if i["kind"] == "option"]
    raise AssertionError("no ETH instruments in the capture")


async def test_frames_match_real_captures_channel_by_channel(cfg: SimConfig) -> None:
    real = _capture_frames()
    real_notes = [f for f in real if f.get("method") == "subscription"]
    real_tickers = [f["params"]["data"] for f in real_notes if f["params"]["channel"].startswith("ticker.")]
    real_books = [f["params"]["data"] for f in real_notes if f["params"]["channel"].startswith("book.")]
    assert len(real_tickers) == 89
    assert len(real_books) == 46
    ws_trades = _nautilus("ws_trades.json")["params"]["data"]
    legs = _nautilus("ws_trades_option_combo.json")["params"]["data"][0]["legs"]
    history_trades = _nautilus("http_get_last_trades.json")["result"]["trades"]
    option_tickers = Shape(real_tickers)
    # modern field: stats.volume_usd (nautilus 2025 ticker); allowed, not required
    option_tickers.nested["stats"].allowed |= set(_nautilus("ws_ticker.json")["params"]["data"]["stats"])
    shapes = {
        "ticker": option_tickers,
        "snapshot": Shape([b for b in real_books if b["type"] == "snapshot"]),
        "change": Shape([b for b in real_books if b["type"] == "change"]),
        "trade": Shape(ws_trades + legs + history_trades),
        "instrument": Shape([*_real_instruments(), _nautilus("http_get_instrument_option.json")["result"]]),
        "reply": Shape([f for f in real if "id" in f]),
    }
    envelope_keys = {k for f in real_notes for k in f}
    params_keys = {k for f in real_notes for k in f["params"]}
    assert envelope_keys == {"jsonrpc", "method", "params"}
    assert params_keys == {"channel", "data"}
    # keys every real trade has, modern and historical alike
    assert shapes["trade"].required >= {
        "trade_id",
        "trade_seq",
        "timestamp",
        "price",
        "amount",
        "direction",
        "tick_direction",
    }

    # heartbeat every 1 s: one test_request arrives, the 1.5 s run ends before the close
    async with running(cfg.replace(trades_per_s=100, heartbeat_scale=0.1)) as sim, client(sim) as c:
        instruments = await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"})
        names = [i["instrument_name"] for i in instruments["result"]]
        sub = await c.call(
            "public/subscribe",
            {
                "channels": [f"ticker.{n}.100ms" for n in names]
                + [f"book.{n}.100ms" for n in names]
                + ["trades.option.ETH.100ms"]
            },
        )
        await c.call("public/set_heartbeat", {"interval": 10})
        await c.collect(1.5)
        await c.call("public/unsubscribe_all")

    problems: list[str] = []
    problems += shapes["reply"].check(sub, "subscribe reply")
    problems += shapes["reply"].check(instruments, "get_instruments reply")
    for inst in instruments["result"]:
        problems += shapes["instrument"].check(inst, inst["instrument_name"])
    notes = [n for n in c.notes if n.get("method") == "subscription"]
    counts: dict[str, int] = defaultdict(int)
    for n in notes:
        assert set(n) == envelope_keys
        assert set(n["params"]) == params_keys
        assert n["jsonrpc"] == "2.0"
        ch, data = n["params"]["channel"], n["params"]["data"]
        if (ch.startswith("ticker.") and counts["ticker"] >= 300) or (
            ch.startswith("book.") and counts["change"] >= 300
        ):
            continue
        if ch.startswith("ticker."):
            problems += shapes["ticker"].check(data, ch)
            counts["ticker"] += 1
            assert isinstance(data["underlying_index"], str)
        elif ch.startswith("book."):
            problems += shapes[data["type"]].check(data, ch)
            counts[data["type"]] += 1
            for entry in data["bids"] + data["asks"]:
                assert [_jtype(x) for x in entry] == ["str", "float", "float"]
        elif ch.startswith("trades."):
            for t in data:
                problems += shapes["trade"].check(t, ch)
                counts["trade"] += 1
    assert problems == []
    assert counts["ticker"] > 50
    assert counts["snapshot"] == len(names)
    assert counts["change"] > 50
    assert counts["trade"] > 20
    heartbeats = [n for n in c.notes if n.get("method") == "heartbeat"]
    assert heartbeats
    assert heartbeats[0] == _nautilus("ws_test_request.json")
    # every real ticker key is present (the 2021 option ticker field set is complete)
    sim_ticker = next(n["params"]["data"] for n in notes if n["params"]["channel"].startswith("ticker."))
    assert set(sim_ticker) == option_tickers.allowed
    assert set(sim_ticker["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    assert set(sim_ticker["stats"]) == {"volume", "low", "high", "price_change", "volume_usd"}


async def test_history_reply_matches_real_shape(cfg: SimConfig) -> None:
    import httpx

    real = _nautilus("http_get_last_trades.json")
    async with running(cfg.replace(trades_per_s=100)) as sim, client(sim) as c:
        await c.collect(0.5)
        trades = sim.history.all_trades()
        async with httpx.AsyncClient() as http:
            r = await http.get(
                f"{sim.http_url}/public/get_last_trades_by_instrument_and_time",
                params={
                    "instrument_name": trades[0]["instrument_name"],
                    "start_timestamp": 0,
                    "end_timestamp": 2**50,
                    "count": 1000,
                },
            )
    body = r.json()
    assert set(body) | {"id"} == set(real)
    assert set(body["result"]) == set(real["result"])
    assert body["result"]["trades"][0]["trade_id"].startswith("ETH-")
    assert Shape(real["result"]["trades"] + _nautilus("ws_trades.json")["params"]["data"]).allowed >= (
        set(body["result"]["trades"][0]) - {"iv"}
    )
