"""A synthetic, realistic Deribit stream in the replay format (for the normalize bench).

Not the simulator (``loadtest``): just enough realism for a parser benchmark. An ETH
option chain (``instruments`` names over 6 expiries), frames in roughly live proportions
at 100ms channels: ~58 % ``ticker`` (full option tickers with greeks and IVs, ~850
bytes), ~32 % ``book`` changes (1–3 levels, a valid change_id chain per instrument, a
snapshot first), ~5 % ``trades.option.ETH.100ms`` arrays (1–3 trades, consecutive
trade_seq per instrument), ~3 % ``deribit_price_index``, ~2 % heartbeats. Deterministic
for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tickarchive.ingest.journal.capture import format_line

_EXPIRIES = ("25NOV26", "26NOV26", "27NOV26", "4DEC26", "25DEC26", "26MAR27")


def _instruments(n: int) -> list[tuple[str, float, str]]:
    out = []
    strikes = [1500 + 100 * i for i in range(40)]
    for exp in _EXPIRIES:
        for k in strikes:
            for cp in ("C", "P"):
                out.append((f"ETH-{exp}-{k}-{cp}", float(k), exp))
    return out[:n]


def _ticker(rng: random.Random, inst: str, strike: float, exp: str, ts_ms: int, under: float) -> dict[str, Any]:
    mark = round(max(0.0001, abs(under - strike) / under * rng.uniform(0.2, 1.2)), 4)
    bid = round(max(0.0, mark - 0.0005 * rng.randint(1, 4)), 4)
    ask = round(mark + 0.0005 * rng.randint(1, 4), 4)
    iv = round(rng.uniform(45, 120), 2)
    empty_bid = rng.random() < 0.05
    return {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {
            "channel": f"ticker.{inst}.100ms",
            "data": {
                "timestamp": ts_ms,
                "stats": {
                    "volume_usd": round(rng.uniform(0, 5e5), 2),
                    "volume": round(rng.uniform(0, 300), 1),
                    "price_change": round(rng.uniform(-20, 20), 4),
                    "low": bid,
                    "high": ask,
                },
                "state": "open",
                "settlement_price": round(mark * 1.01, 8),
                "open_interest": round(rng.uniform(0, 5000), 1),
                "min_price": 0.0001,
                "max_price": round(ask * 2 + 0.01, 4),
                "mark_price": mark,
                "mark_iv": iv,
                "last_price": round(mark * rng.uniform(0.9, 1.1), 4),
                "interest_rate": 0.0,
                "instrument_name": inst,
                "index_price": round(under + rng.uniform(-1, 1), 2),
                "greeks": {
                    "rho": round(rng.uniform(-5, 5), 5),
                    "theta": round(rng.uniform(-10, 0), 5),
                    "vega": round(rng.uniform(0, 3), 5),
                    "gamma": round(rng.uniform(0, 0.002), 5),
                    "delta": round(rng.uniform(-1, 1), 5),
                },
                "estimated_delivery_price": round(under, 2),
                "bid_iv": 0.0 if empty_bid else round(iv - rng.uniform(1, 5), 2),
                "best_bid_price": 0.0 if empty_bid else bid,
                "best_bid_amount": 0.0 if empty_bid else float(rng.randint(1, 500)),
                "best_ask_price": ask,
                "best_ask_amount": float(rng.randint(1, 500)),
                "ask_iv": round(iv + rng.uniform(1, 5), 2),
                "underlying_price": round(under + rng.uniform(-3, 3), 2),
                "underlying_index": f"ETH-{exp}",
            },
        },
    }


def frames(
    n: int, seed: int = 1, instruments: int = 400, start_us: int = 1_795_000_000_000_000
) -> Iterator[tuple[int, bytes]]:
    """``n`` (recv_ts_us, frame) pairs."""
    rng = random.Random(seed)
    insts = _instruments(instruments)
    change_ids: dict[str, int] = {}
    trade_seq: dict[str, int] = {}
    trade_id = 300_000_000
    under = 3000.0
    ts_us = start_us
    for _ in range(n):
        ts_us += rng.randint(50, 400)
        ts_ms = ts_us // 1000 - rng.randint(1, 30)
        under += rng.uniform(-0.5, 0.5)
        r = rng.random()
        inst, strike, exp = insts[rng.randrange(len(insts))]
        msg: dict[str, Any]
        if r < 0.58:
            msg = _ticker(rng, inst, strike, exp, ts_ms, under)
        elif r < 0.90:
            prev = change_ids.get(inst)
            cid = (prev or 10_000_000_000 + rng.randint(0, 10**6)) + rng.randint(1, 400)
            change_ids[inst] = cid

            def lvl() -> list[Any]:
                return [round(0.0005 * rng.randint(1, 400), 4), float(rng.randint(1, 300))]

            if prev is None:
                data = {
                    "type": "snapshot",
                    "timestamp": ts_ms,
                    "instrument_name": inst,
                    "change_id": cid,
                    "bids": [["new", *lvl()] for _ in range(rng.randint(0, 6))],
                    "asks": [["new", *lvl()] for _ in range(rng.randint(0, 6))],
                }
            else:

                def ch() -> list[Any]:
                    a = rng.choice(("new", "change", "delete"))
                    p, q = lvl()
                    return [a, p, 0.0 if a == "delete" else q]

                k = rng.randint(1, 3)
                bids = [ch() for _ in range(rng.randint(0, k))]
                asks = [ch() for _ in range(k - len(bids))]
                data = {
                    "type": "change",
                    "timestamp": ts_ms,
                    "prev_change_id": prev,
                    "instrument_name": inst,
                    "change_id": cid,
                    "bids": bids,
                    "asks": asks,
                }
            msg = {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {"channel": f"book.{inst}.100ms", "data": data},
            }
        elif r < 0.95:
            trades = []
            for _ in range(rng.randint(1, 3)):
                inst, strike, exp = insts[rng.randrange(len(insts))]
                seq = trade_seq.get(inst, rng.randint(1, 5000)) + 1
                trade_seq[inst] = seq
                trade_id += 1
                price = round(0.0005 * rng.randint(1, 400), 4)
                trades.append(
                    {
                        "trade_seq": seq,
                        "trade_id": f"ETH-{trade_id}",
                        "timestamp": ts_ms,
                        "tick_direction": rng.randint(0, 3),
                        "price": price,
                        "mark_price": price,
                        "iv": round(rng.uniform(45, 120), 2),
                        "instrument_name": inst,
                        "index_price": round(under, 2),
                        "direction": rng.choice(("buy", "sell")),
                        "amount": float(rng.randint(1, 50)),
                        "contracts": float(rng.randint(1, 50)),
                    }
                )
            msg = {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {"channel": "trades.option.ETH.100ms", "data": trades},
            }
        elif r < 0.98:
            msg = {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {
                    "channel": "deribit_price_index.eth_usd",
                    "data": {"timestamp": ts_ms, "price": round(under, 2), "index_name": "eth_usd"},
                },
            }
        else:
            kind = "test_request" if rng.random() < 0.5 else "heartbeat"
            msg = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": kind}}
        yield ts_us, orjson.dumps(msg)


def write_replay_file(path: Path, n: int, seed: int = 1) -> int:
    """Write ``n`` synthetic frames to ``path`` in the replay format; return bytes written."""
    size = 0
    with path.open("wb") as f:
        for ts, frame in frames(n, seed):
            line = format_line(ts, frame)
            f.write(line)
            size += len(line)
    return size
