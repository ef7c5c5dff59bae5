"""The simulator's frames have the field names and JSON types of real Deribit frames.

References are the real captures in ``tests/fixtures/deribit/real``: option tickers and
books (cryptofeed 2021 captures, tardis), future and perpetual tickers (crypto-msg-parser
2022, tardis 2019, nautilus 2025), combo tickers (tardis 2022), trades (nautilus
ws_trades / option-combo trade and legs / history), get_instruments (cryptofeed options
and futures, the 2025 futures list, nautilus option and option combos), get_combos
(nautilus), the subscribe reply, the test_request heartbeat. The statistics of the chain
and its streams are ``test_fidelity_stats.py``'s. For each frame kind: every key the simulator sends must
occur in a real frame of that kind (real-only optional keys are allowed to be absent),
the keys present in *every* real frame must be present, and each value's JSON type must
be one the real frames use for that key (nested objects compared the same way).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tests.real import (
    CRYPTO_MSG_PARSER,
    FUTURES_2025,
    REAL,
    REST_CAPTURE,
    REST_CAPTURE_APRIL,
    TARDIS,
    WS_CAPTURES,
    jsonl_frames,
    notifications,
)
from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim import native as sim_native

from .conftest import client, running, until


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


def _real_instruments(path: Any = REST_CAPTURE, kind: str = "option") -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if "currency=ETH" in line or "currency=BTC" in line:
            body = json.loads(line.split(": ", 1)[1])
            out += [i for i in body["result"] if i["kind"] == kind]
    assert out
    return out


def _jsonl_data(path: Any) -> list[tuple[str, Any]]:
    out = []
    for frame in jsonl_frames(path):
        msg = json.loads(frame)
        if msg.get("method") == "subscription":
            out.append((msg["params"]["channel"], msg["params"]["data"]))
    return out


def _real_shapes() -> dict[str, Shape]:
    """Each frame kind's shape from every real sample of it."""
    notes = [n for path in WS_CAPTURES for n in notifications(path)]
    more = _jsonl_data(TARDIS) + _jsonl_data(CRYPTO_MSG_PARSER)
    option_tickers = [n["data"] for n in notes if n["channel"].startswith("ticker.")]
    option_tickers += [
        d for ch, d in more if ch.startswith("ticker.") and _kind_of(d["instrument_name"]) == "option" and "_" not in ch
    ]
    future_tickers = [d for ch, d in more if ch.startswith("ticker.") and ch.count("-") == 1 and "-FS-" not in ch]
    future_tickers.append(_nautilus("ws_ticker.json")["params"]["data"])
    combo_tickers = [d for ch, d in more if ch.startswith("ticker.") and ("STRD" in ch or "CSR" in ch)]
    books = [n["data"] for n in notes if n["channel"].startswith("book.")]
    books += [d for ch, d in more if ch.startswith("book.") and ch.count(".") == 2 and "type" in d]
    ws_trades = _nautilus("ws_trades.json")["params"]["data"]
    combo_trade = _nautilus("ws_trades_option_combo.json")["params"]["data"]
    history_trades = _nautilus("http_get_last_trades.json")["result"]["trades"]
    futures_2025 = json.loads(FUTURES_2025.read_text())
    option_ticker = Shape(option_tickers)
    # modern stats fields (nautilus 2025, MATIC 2024 option): allowed, not required
    option_ticker.nested["stats"].allowed |= {"volume_usd"}
    future_ticker = Shape(future_tickers)
    assert {"funding_8h", "current_funding", "interest_value"} <= future_ticker.allowed
    combo_ticker = Shape(combo_tickers)
    # the two real combo tickers never traded (stats all null): a traded combo's stats are an option's
    combo_ticker.nested["stats"] = option_ticker.nested["stats"]
    combo_ticker.types["last_price"] |= {"float"}
    return {
        "option ticker": option_ticker,
        "future ticker": future_ticker,
        "combo ticker": combo_ticker,
        "snapshot": Shape([b for b in books if b["type"] == "snapshot"]),
        "change": Shape([b for b in books if b["type"] == "change"]),
        "trade": Shape(ws_trades + [leg for t in combo_trade for leg in t["legs"]] + history_trades),
        "combo trade": Shape(combo_trade),
        "option": Shape(
            [
                *_real_instruments(),
                *_real_instruments(REST_CAPTURE_APRIL),
                _nautilus("http_get_instrument_option.json")["result"],
            ]
        ),
        "future": Shape([*_real_instruments(kind="future"), *futures_2025]),
        "option_combo": Shape(_nautilus("http_get_instruments_option_combo.json")["result"]),
        "combos": Shape(json.loads((REAL / "nautilus" / "http_get_combos.json").read_text())["result"]),
        "reply": Shape([f for f in _capture_frames() if "id" in f]),
    }


def _kind_of(name: str) -> str:
    if name.endswith("-PERPETUAL") or name.count("-") == 1:
        return "future"
    return "option" if name.split("-")[-1] in ("C", "P") else "combo"


async def test_frames_match_real_captures_kind_by_kind(cfg: SimConfig) -> None:
    """Options, futures, perpetuals and combos, ETH and BTC: every key the simulator sends
    occurs in a real frame of that kind, every key all real frames have is there, and each
    value's JSON type is one real frames use."""
    shapes = _real_shapes()
    cfg = cfg.replace(
        trades_per_s=200, heartbeat_scale=0.1, currencies=("ETH", "BTC"), kinds=("option", "future", "option_combo")
    )
    async with running(cfg) as sim, client(sim) as c:
        listed: dict[str, list[dict[str, Any]]] = {}
        for kind in ("option", "future", "option_combo"):
            listed[kind] = (await c.call("public/get_instruments", {"currency": "any", "kind": kind}))["result"]
        combos = await c.call("public/get_combos", {"currency": "any"})
        instruments = await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"})
        names = [i["instrument_name"] for kind in listed for i in listed[kind]]
        channels = [f"{k}.{n}.100ms" for n in names for k in ("ticker", "book")]
        channels += [f"trades.{k}.any.100ms" for k in ("option", "future", "option_combo")]
        subs = []
        for i in range(0, len(channels), 500):
            subs.append(await c.call("public/subscribe", {"channels": channels[i : i + 500]}))
        # until every kind asserted below arrived (counts, not 1.5 s of stream: a loaded
        # machine's simulator sends less in that time), then a test_request (a second after
        # set_heartbeat; left unanswered, so nothing is sent after it: the simulator closes
        # the connection at the next tick). The deadlines only bound a failure.
        await c.collect(120.0, until=_every_kind_seen())
        await c.call("public/unsubscribe_all")
        await c.call("public/set_heartbeat", {"interval": 10})
        await c.collect(60.0, until=lambda notes: any(n.get("method") == "heartbeat" for n in notes))

    assert {i["base_currency"] for kind in listed for i in listed[kind]} == {"ETH", "BTC"}
    assert len(listed["future"]) >= 4
    assert sum(i["settlement_period"] == "perpetual" for i in listed["future"]) == 2
    assert len(listed["option_combo"]) == 2 * cfg.combos
    problems: list[str] = []
    problems += shapes["reply"].check(subs[0], "subscribe reply")
    problems += shapes["reply"].check(instruments, "get_instruments reply")
    for kind, items in listed.items():
        for inst in items:
            problems += shapes[kind].check(inst, inst["instrument_name"])
    for combo in combos["result"]:
        problems += shapes["combos"].check(combo, combo["id"])
    counts: dict[str, int] = defaultdict(int)
    notes = [n for n in c.notes if n.get("method") == "subscription"]
    for n in notes:
        ch, data = n["params"]["channel"], n["params"]["data"]
        if ch.startswith("ticker."):
            kind = _kind_of(data["instrument_name"])
            if counts[kind + " ticker"] < 400:
                problems += shapes[kind + " ticker"].check(data, ch)
            counts[kind + " ticker"] += 1
        elif ch.startswith("book."):
            if counts[data["type"]] < 400:
                problems += shapes[data["type"]].check(data, ch)
            counts[data["type"]] += 1
            for entry in data["bids"] + data["asks"]:
                assert [_jtype(x) for x in entry] == ["str", "float", "float"]
        elif ch.startswith("trades."):
            for t in data:
                if "legs" in t:
                    problems += shapes["combo trade"].check(t, ch)
                    counts["combo trade"] += 1
                else:
                    problems += shapes["trade"].check(t, ch)
                    counts["trade"] += 1
    kinds_of_problems = sorted({re.sub(r"[A-Z]+-[A-Za-z0-9_-]+", "X", p) for p in problems})
    assert problems == [], kinds_of_problems
    assert counts["option ticker"] > 50
    assert counts["future ticker"] > 20
    assert counts["combo ticker"] > 0
    assert counts["snapshot"] == len(names)
    assert counts["change"] > 50
    assert counts["trade"] > 50
    heartbeats = [n for n in c.notes if n.get("method") == "heartbeat"]
    assert heartbeats
    assert heartbeats[0] == _nautilus("ws_test_request.json")
    # the real option ticker field set is complete: a quoted, traded option has every key
    full = [
        n["params"]["data"]
        for n in notes
        if n["params"]["channel"].startswith("ticker.") and _full_option_ticker(n["params"]["data"])
    ]
    assert full
    assert set(full[0]) == shapes["option ticker"].allowed - {"delivery_price"}
    assert set(full[0]["stats"]) == {"volume", "low", "high", "price_change", "volume_usd"}


def _full_option_ticker(data: dict[str, Any]) -> bool:
    """A quoted, traded option's ticker: every key of the real option ticker field set."""
    return (_kind_of(data["instrument_name"]) == "option" and data["stats"]["volume"] is not None
            and "settlement_price" in data and data["state"] == "open")


def _every_kind_seen() -> Callable[[list[dict[str, Any]]], bool]:
    """A ``collect`` condition: the notifications hold what ``test_frames_match_real_captures_kind_by_kind``
    counts (more than 50 option tickers, 20 future tickers, 50 book changes and 50 trades,
    a combo ticker, a full option ticker)."""
    seen: dict[str, int] = defaultdict(int)
    counted = 0

    def enough(notes: list[dict[str, Any]]) -> bool:
        nonlocal counted
        for n in notes[counted:]:
            if n.get("method") != "subscription":
                continue
            ch, data = n["params"]["channel"], n["params"]["data"]
            if ch.startswith("ticker."):
                seen[_kind_of(data["instrument_name"]) + " ticker"] += 1
                seen["full"] += _full_option_ticker(data)
            elif ch.startswith("book."):
                seen[data["type"]] += 1
            elif ch.startswith("trades."):
                seen["trade"] += sum("legs" not in t for t in data)
        counted = len(notes)
        return (seen["option ticker"] > 50 and seen["future ticker"] > 20 and seen["combo ticker"] > 0
                and seen["change"] > 50 and seen["trade"] > 50 and seen["full"] > 0)

    return enough


async def test_history_reply_matches_real_shape(cfg: SimConfig) -> None:
    import httpx

    real = _nautilus("http_get_last_trades.json")
    async with running(cfg.replace(trades_per_s=100)) as sim, client(sim):
        await until(lambda: len(sim.history) > 0, 60.0, "a trade")  # (not 0.5 s: a condition)
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
