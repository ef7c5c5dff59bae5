"""A ticker's ``stats.volume``, ``low`` and ``high`` are those of the instrument's trades of
the last 24 hours (``loadtest/sim/window.py``): what a consumer compares with the trades it
stored in that window."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tickarchive.loadtest.sim import SimConfig, encode
from tickarchive.loadtest.sim.market import MarketModel, TradesEvent
from tickarchive.loadtest.sim.window import DAY_MS, VolumeWindow

from .conftest import START_MS


class _St:
    def __init__(self) -> None:
        self.volume = 0.0
        self.low = 0.0
        self.high = 0.0


def test_the_window_keeps_24_hours_of_trades() -> None:
    w = VolumeWindow()
    st = _St()
    st.volume, st.low, st.high = 7.0, 0.01, 0.03  # listed with history: before the start
    w.seed(st, initial=True)
    assert w.expire(1_000) == []  # the first step: the history counts from here
    w.trade(st, 2_000, 0.05, 1.5)
    w.trade(st, 3_000, 0.002, 2.0)
    assert (st.volume, st.low, st.high) == (10.5, 0.002, 0.05)
    assert w.expire(1_000 + DAY_MS) == [st]  # the history leaves 24 h after the first step
    assert (st.volume, st.low, st.high) == (3.5, 0.002, 0.05)
    assert w.expire(2_000 + DAY_MS) == [st]
    assert (st.volume, st.low, st.high) == (2.0, 0.002, 0.002)
    assert w.expire(2_500 + DAY_MS) == []
    assert w.expire(3_000 + DAY_MS) == [st]  # no trade in 24 h: stats null on the wire
    assert (st.volume, st.low, st.high) == (0.0, 0.0, 0.0)
    assert len(w) == 0

    later = _St()
    later.volume, later.low, later.high = 5.0, 0.1, 0.2
    w.seed(later, initial=False)  # listed while running: no history
    assert (later.volume, later.low, later.high) == (0.0, 0.0, 0.0)


def test_ticker_stats_are_the_trades_of_the_last_24_hours() -> None:
    """Steps one simulated minute apart over 26 hours; at every hour each ticker's volume,
    low and high equal those of the trades the model sent in the 24 h before (and before
    24 h have passed, the listed history on top)."""
    cfg = SimConfig(seed=5, start_ms=START_MS, instruments=40, trades_per_s=300.0, rate_per_s=200.0,
                    kinds=("option", "future"), currencies=("ETH", "BTC"))
    model = MarketModel(cfg, wall_start_ms=START_MS)
    history = {name: (st.volume, st.low, st.high) for name, st in model.states.items() if st.volume}
    assert history, "some instruments are listed with trading history"
    trades: list[dict[str, Any]] = []
    step_ms = 60_000
    checked = 0
    for i in range(1, 26 * 60 + 1):
        now = START_MS + i * step_ms
        for ev in model.step(now):
            if isinstance(ev, TradesEvent):
                trades.extend(ev.trades)
        if i % 60:
            continue
        recent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in trades:
            if t["timestamp"] > now - DAY_MS:
                recent[t["instrument_name"]].append(t)
        first_step = START_MS + step_ms
        for name, st in model.states.items():
            if st.inst.state != "open":
                continue
            mine = recent.get(name, [])
            volume = sum(t["amount"] for t in mine)
            prices = [t["price"] for t in mine]
            if name in history and first_step > now - DAY_MS:
                volume += history[name][0]
                prices += [history[name][1], history[name][2]]
            stats = encode.ticker_dict(model, st)["stats"]
            if not prices:
                assert not stats["volume"], (name, now)  # null (options) or 0.0 (futures)
                continue
            assert abs(stats["volume"] - volume) < 1e-6, (name, now, stats["volume"], volume)
            assert (stats["low"], stats["high"]) == (min(prices), max(prices)), (name, now)
            checked += 1
    # both sides of the 24 h mark were seen, with trades leaving the window
    assert checked > 0
    assert len(trades) > len(model.window)
