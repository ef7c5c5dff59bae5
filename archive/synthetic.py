"""Synthetic but realistic rows for quotes, trades and book_changes (tests and ``bench``).

About 800 ETH option instruments (expiries x strikes x call/put); each instrument's ticks
are a random walk around a plausible level, with Deribit's resolutions: timestamps in
whole milliseconds, option prices on a 0.0005 tick, IVs to 0.01 %, greeks to 5 decimals,
underlying and index to 0.01 USD, sizes in whole contracts. Liquid (near-the-money,
near-expiry) instruments tick more often. Deterministic for a given seed.

Uses numpy (installed as a dependency of the questdb client).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from tickarchive import rows
from tickarchive.months import Month
from tickarchive.tables import BOOK_CHANGES, QUOTES, TRADES, Table

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
SPOT_USD = 3000.0


def instruments(count: int = 800, first_expiry: dt.date = dt.date(2026, 12, 25)) -> list[tuple[str, float, int]]:
    """``count`` option names with strike and expiry index, e.g. ``ETH-25DEC26-3000-C``."""
    expiries = [first_expiry + dt.timedelta(days=7 * i) for i in range(10)]
    strikes_per = max(1, count // (2 * len(expiries)))
    out: list[tuple[str, float, int]] = []
    for e_index, e in enumerate(expiries):
        code = f"{e.day}{_MONTHS[e.month - 1]}{e.year % 100:02d}"
        for k in range(strikes_per):
            strike = SPOT_USD * 0.5 + k * (SPOT_USD * 1.5 / strikes_per)
            strike = round(strike / 50) * 50
            for kind in ("C", "P"):
                out.append((f"ETH-{code}-{int(strike)}-{kind}", float(strike), e_index))
    return sorted(out)[:count]


def _layout(
    rng: np.random.Generator, n_rows: int, names: list[tuple[str, float, int]], start_us: int, span_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instrument index per row (grouped, ascending name) and strictly increasing ts per instrument."""
    strikes = np.array([k for _, k, _ in names])
    expiry = np.array([e for _, _, e in names])
    weight = np.exp(-(((strikes - SPOT_USD) / (0.25 * SPOT_USD)) ** 2)) / (1 + expiry) + 0.02
    counts = rng.multinomial(n_rows, weight / weight.sum())
    counts = np.minimum(counts, span_ms)
    inst = np.repeat(np.arange(len(names)), counts)
    ts = np.empty(inst.size, dtype=np.int64)
    pos = 0
    for c in counts:
        if c:
            u = np.sort(rng.integers(0, span_ms - c + 1, size=c)) + np.arange(c)
            ts[pos : pos + c] = start_us + u * 1000
            pos += c
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return inst, ts, np.repeat(starts, counts)


def _walk(rng: np.random.Generator, size: int, group_start: np.ndarray, step: float) -> np.ndarray:
    """A random walk per group (resets at each group's first row)."""
    cs = np.cumsum(rng.normal(0.0, step, size))
    return cs - cs[group_start] if size else cs


def _tick(x: np.ndarray, tick: float) -> np.ndarray:
    return np.round(np.maximum(np.round(x / tick) * tick, tick), 4)


def quotes(n_rows: int, month: Month, seed: int = 1, n_instruments: int = 800, span_days: float = 1.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    names = instruments(n_instruments)
    span_ms = int(span_days * 86_400_000)
    inst, ts, gstart = _layout(rng, n_rows, names, month.start_us, span_ms)
    n = inst.size
    strike = np.array([k for _, k, _ in names])[inst]
    is_call = np.array([nm.endswith("-C") for nm, _, _ in names])[inst]
    # a shared underlying path over time
    t_frac = (ts - month.start_us) / (span_ms * 1000)
    underlying = np.round(SPOT_USD * (1 + 0.02 * np.sin(6.0 * t_frac) + 0.001 * rng.standard_normal(n)), 2)
    moneyness = np.where(is_call, underlying - strike, strike - underlying) / underlying
    base = np.maximum(moneyness, 0) + 0.02 * np.exp(-((moneyness / 0.2) ** 2))
    mark = _tick(base * (1 + _walk(rng, n, gstart, 0.002)), 0.0001)
    spread = _tick(0.0005 + 0.05 * mark, 0.0005)
    bid = _tick(mark - spread / 2, 0.0005)
    ask = _tick(mark + spread / 2, 0.0005)
    iv = np.round(55 + 30 * np.abs(moneyness) + _walk(rng, n, gstart, 0.05), 2)
    delta = np.round(np.clip(np.where(is_call, 0.5, -0.5) + 2 * moneyness * np.where(is_call, 1, -1), -1, 1), 5)
    empty_bid = rng.random(n) < 0.03
    traded = (np.arange(len(names)) % 2 == 0)[inst]  # half the options traded in the last 24 h
    cols = {
        "ts": ts,
        "recv_ts": ts + rng.integers(800, 40_000, n),
        "instrument": np.array([nm for nm, _, _ in names], dtype=object)[inst],
        "bid_price": np.where(empty_bid, np.nan, bid),
        "bid_amount": np.where(empty_bid, np.nan, rng.integers(1, 200, n).astype(float)),
        "ask_price": ask,
        "ask_amount": rng.integers(1, 200, n).astype(float),
        "bid_iv": np.where(empty_bid, np.nan, np.round(iv - 2.5, 2)),
        "ask_iv": np.round(iv + 2.5, 2),
        "mark_iv": iv,
        "mark_price": mark,
        "underlying_price": underlying,
        "underlying_index": np.array(["ETH-26DEC26", "index_price"], dtype=object)[(strike > 3500).astype(int)],
        "index_price": np.round(underlying - 1.5, 2),
        "delta": delta,
        "gamma": np.round(0.0008 * np.exp(-((moneyness / 0.2) ** 2)), 5),
        "vega": np.round(3.0 * np.exp(-((moneyness / 0.3) ** 2)), 5),
        "theta": np.round(-4.0 * np.exp(-((moneyness / 0.3) ** 2)), 5),
        "rho": np.round(delta * 0.8, 5),
        "open_interest": np.round(np.abs(_walk(rng, n, gstart, 1.0)) + 100, 0),
        "last_price": _tick(mark, 0.0005),
        "settlement_price": _tick(mark * 1.01, 0.0001),
        "min_price": np.full(n, 0.0001),
        "max_price": _tick(mark + 0.1, 0.0005),
        "interest_rate": np.zeros(n),
        "volume_24h": np.round(np.abs(_walk(rng, n, gstart, 0.5)) + 10, 1),
        "current_funding": np.full(n, np.nan),
        "funding_8h": np.full(n, np.nan),
        "estimated_delivery_price": np.round(underlying - 1.5, 2),
        "state": np.full(n, "open", dtype=object),
        # the 24 h stats (null without a trade in 24 h, as Deribit sends them), the channel
        "high_24h": np.where(traded, _tick(mark * 1.1, 0.0005), np.nan),
        "low_24h": np.where(traded, _tick(mark * 0.9, 0.0005), np.nan),
        "price_change_24h": np.where(traded, np.round(_walk(rng, n, gstart, 0.05), 4), np.nan),
        "volume_usd_24h": np.where(traded, np.round(np.abs(_walk(rng, n, gstart, 50.0)) + 1000, 2), np.nan),
        "volume_notional_24h": np.full(n, np.nan),
        "interest_value": np.full(n, np.nan),
        "delivery_price": np.full(n, np.nan),
        "implied_bid": np.full(n, np.nan),
        "implied_ask": np.full(n, np.nan),
        "combo_state": _nulls(n),
        "channel_interval": np.full(n, "100ms", dtype=object),
    }
    return _to_arrow(QUOTES, cols)


def trades(n_rows: int, month: Month, seed: int = 2, n_instruments: int = 800, span_days: float = 1.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    names = instruments(n_instruments)
    inst, ts, gstart = _layout(rng, n_rows, names, month.start_us, int(span_days * 86_400_000))
    n = inst.size
    seq = np.arange(n) - gstart + 1 + 1000 * inst
    price = _tick(0.05 * np.exp(_walk(rng, n, gstart, 0.01)), 0.0005)
    amount = rng.integers(1, 50, n).astype(float)
    block = rng.random(n) < 0.01
    cols = {
        "ts": ts,
        "recv_ts": ts + rng.integers(800, 40_000, n),
        "instrument": np.array([nm for nm, _, _ in names], dtype=object)[inst],
        "trade_id": np.array([f"ETH-{300_000_000 + i}" for i in range(n)], dtype=object),
        "trade_seq": seq,
        "price": price,
        "amount": amount,
        "direction": np.array(["buy", "sell"], dtype=object)[rng.integers(0, 2, n)],
        "tick_direction": rng.integers(0, 4, n).astype(np.int32),
        "mark_price": _tick(price, 0.0001),
        "index_price": np.round(SPOT_USD + _walk(rng, n, gstart, 0.5), 2),
        "iv": np.round(60 + _walk(rng, n, gstart, 0.1), 2),
        "contracts": amount,
        "block_trade_id": np.where(block, np.array([f"BLOCK-{i}" for i in range(n)], dtype=object), _nulls(n)),
        "liquidation": np.full(n, None, dtype=object),
        "combo_id": np.full(n, None, dtype=object),
        "combo_trade_id": np.full(n, None, dtype=object),
        "source": np.full(n, "ws", dtype=object),
    }
    return _to_arrow(TRADES, cols)


def book_changes(
    n_rows: int, month: Month, seed: int = 3, n_instruments: int = 800, span_days: float = 1.0
) -> pa.Table:
    rng = np.random.default_rng(seed)
    names = instruments(n_instruments)
    inst, ts, gstart = _layout(rng, n_rows, names, month.start_us, int(span_days * 86_400_000))
    n = inst.size
    change = 60_000_000_000 + 1000 * inst * 1000 + (np.arange(n) - gstart) * rng.integers(1, 4, n)
    change = np.maximum.accumulate(change)  # ensure increasing within instrument groups
    change = change + (np.arange(n) - gstart)  # strictly
    prev = np.concatenate([[0], change[:-1]])
    first = np.arange(n) == gstart
    action = np.array(["new", "change", "delete"], dtype=object)[rng.integers(0, 3, n)]
    amount = np.where(action == "delete", 0.0, rng.integers(1, 300, n).astype(float))
    cols = {
        "ts": ts,
        "recv_ts": ts + rng.integers(800, 40_000, n),
        "instrument": np.array([nm for nm, _, _ in names], dtype=object)[inst],
        "change_id": change,
        "prev_change_id": np.where(first, _nulls(n), prev.astype(object)),
        "is_snapshot": first,
        "side": np.array(["bid", "ask"], dtype=object)[rng.integers(0, 2, n)],
        "action": np.where(first, "snapshot", action),
        "price": _tick(0.05 * np.exp(_walk(rng, n, gstart, 0.01)), 0.0005),
        "amount": amount,
        "channel_interval": np.full(n, "100ms", dtype=object),
    }
    return _to_arrow(BOOK_CHANGES, cols)


def _nulls(n: int) -> np.ndarray:
    return np.full(n, None, dtype=object)


def _to_arrow(table: Table, cols: dict[str, np.ndarray]) -> pa.Table:
    schema = rows.arrow_schema(table)
    arrays = []
    for f in schema:
        values = cols[f.name]
        if pa.types.is_timestamp(f.type):
            arrays.append(pa.array(values.astype(np.int64), pa.int64()).cast(f.type))
        elif pa.types.is_floating(f.type):
            arrays.append(pa.array(values, f.type, from_pandas=True))  # NaN -> NULL
        else:
            arrays.append(pa.array(values.tolist() if values.dtype == object else values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


GENERATORS = {"quotes": quotes, "trades": trades, "book_changes": book_changes}
