"""Trades (pure, over a ``MarketModel``): who trades, at what price, and what it changes.

An instrument is drawn by activity (``MarketModel.pick``); the taker buys or sells at the
opposite best level (or at the mark on the option's grid when that side is empty).
Option trades carry ``iv``; future trades are in USD (``contracts`` = amount / contract
size). A combo trade is one trade on the combo (its ``legs`` listed inside) and one trade
per leg on the leg's own instrument with ``combo_id``/``combo_trade_id``, ids
consecutive (the combo's first, as on Deribit). ``trade_id`` is ``ETH-<n>`` for ETH and
plain digits for BTC (both exist); ``trade_seq`` is consecutive per instrument.
"""

from __future__ import annotations

import math
from typing import Any

from tickarchive.loadtest.sim import native as _native
from tickarchive.loadtest.sim import quoting, ticks
from tickarchive.loadtest.sim.chain import COMBO, FUTURE, OPTION
from tickarchive.loadtest.sim.derivs import ComboState, FutureState
from tickarchive.loadtest.sim.lifecycle import TRADE_SIZES, price_combo
from tickarchive.loadtest.sim.quoting import OptionState
from tickarchive.loadtest.sim.state import MarketState, State

fround = ticks.fround


def _trade_id(model: MarketState, cur: int) -> str:
    m = model.currencies[cur]
    m.trade_id += 1 + int(model.rng.random() * 3)
    return f"ETH-{m.trade_id}" if m.currency == "ETH" else str(m.trade_id)


def _tick_direction(st: Any, price: float) -> int:
    last = st.last_price
    if last is None or price > last:
        d = 0
    elif price < last:
        d = 2
    else:
        d = 1 if st.last_tick_direction in (0, 1) else 3
    st.last_tick_direction = d
    return d


def _book_keeping(model: MarketState, st: Any, ts: int, price: float, amount: float, oi_up: bool) -> None:
    st.last_price = price
    st.trade_seq += 1
    model.window.trade(st, ts, price, amount)  # stats.volume, low, high: the last 24 h
    st.open_interest = max(0.0, fround(st.open_interest + (amount if oi_up else -amount), 1e4, 4))


def option_trade(model: MarketState, st: OptionState, ts: int, is_buy: bool, amount: float) -> dict[str, Any]:
    model.sync(st)
    model.ensure_priced(st)
    level = st.best_ask() if is_buy else st.best_bid()
    if level is not None:
        price = level[0]
    else:
        n = ticks.units_ceil(st.val.price_coin) if is_buy else ticks.units_floor(st.val.price_coin)
        n = ticks.valid_up(n) if is_buy else ticks.valid_down(n)
        price = ticks.unit_price(max(n, 1))
    tick_direction = _tick_direction(st, price)
    _book_keeping(model, st, ts, price, amount, model.rng.random() < 0.6)
    trade = {
        "trade_seq": st.trade_seq,
        "trade_id": _trade_id(model, st.cur),
        "timestamp": ts,
        "tick_direction": tick_direction,
        "price": price,
        "mark_price": fround(st.val.price_coin, 10.0 ** model.currencies[st.cur].mark_digits,
                             model.currencies[st.cur].mark_digits),
        "iv": quoting.iv_of(st, price, not is_buy) or st.mark_iv,
        "instrument_name": st.inst.name,
        "index_price": model.currencies[st.cur].index_price,
        "direction": "buy" if is_buy else "sell",
        "amount": amount,
        "contracts": amount,
    }
    if st.nid >= 0:
        _native.set_trade(model.native, st)
    return trade


def trade(model: MarketState, st: State) -> None:
    """One trade of ``st`` (a combo trade: one per leg too), queued for the trade window."""
    rng = model.rng
    ts = max(model.stamp(), model.last_trade_ms)  # trades in time order, as in the trades channels
    model.last_trade_ms = ts
    is_buy = rng.random() < 0.5
    cur = model.currencies[st.cur].currency
    if isinstance(st, OptionState):
        amount = fround(rng.choice(TRADE_SIZES) * (0.1 if cur == "BTC" else 1.0), 10.0, 1)
        model.add_trade(option_trade(model, st, ts, is_buy, amount), cur, OPTION)
        return
    if isinstance(st, FutureState):
        level = st.best_ask() if is_buy else st.best_bid()
        price = level[0] if level is not None else ticks.grid_round(st.mark, st.tick, up=is_buy)
        contracts = float(rng.choice(TRADE_SIZES) * (1 + rng.randrange(20)))
        amount = contracts * st.contract_size
        tick_direction = _tick_direction(st, price)
        _book_keeping(model, st, ts, price, amount, rng.random() < 0.55)
        model.add_trade(
            {
                "trade_seq": st.trade_seq,
                "trade_id": _trade_id(model, st.cur),
                "timestamp": ts,
                "tick_direction": tick_direction,
                "price": price,
                "mark_price": fround(st.mark, 100.0, 2),
                "instrument_name": st.inst.name,
                "index_price": model.currencies[st.cur].index_price,
                "direction": "buy" if is_buy else "sell",
                "amount": amount,
                "contracts": contracts,
            },
            cur,
            FUTURE,
        )
        return
    assert isinstance(st, ComboState)
    price_combo(model, st)
    amount = fround(rng.choice(TRADE_SIZES[:8]) * (0.1 if cur == "BTC" else 1.0), 10.0, 1)
    implied = st.implied()
    quoted = implied[1] if is_buy else implied[0]
    price = fround(st.mark if quoted is None else quoted, 1e4, 4)
    if math.isclose(price, 0.0):
        price = 0.0001
    combo_tid = _trade_id(model, st.cur)
    tick_direction = _tick_direction(st, price)
    _book_keeping(model, st, ts, price, amount, True)
    legs = []
    for leg, r in st.legs:
        leg_buy = is_buy == (r > 0)
        t = option_trade(model, leg, ts, leg_buy, fround(amount * abs(r), 10.0, 1))
        t["combo_id"] = st.inst.name
        t["combo_trade_id"] = combo_tid
        legs.append(t)
    combo = {
        "trade_seq": st.trade_seq,
        "trade_id": combo_tid,
        "timestamp": ts,
        "tick_direction": tick_direction,
        "price": price,
        "mark_price": fround(st.mark, 1e8, 8),
        "instrument_name": st.inst.name,
        "index_price": model.currencies[st.cur].index_price,
        "direction": "buy" if is_buy else "sell",
        "amount": amount,
        "contracts": amount,
        "legs": legs,
    }
    model.add_trade(combo, cur, COMBO)
    for t in legs:
        model.add_trade(t, cur, OPTION)
