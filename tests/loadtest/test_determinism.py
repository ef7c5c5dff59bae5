"""Same seed, same market: the first frames are identical modulo wall-clock timestamps."""

from __future__ import annotations

import re
from typing import Any

from loadtest.sim import SimConfig, encode
from loadtest.sim.market import BookEvent, IndexEvent, MarketModel, StateEvent, TickerEvent, TradesEvent

from .conftest import START_MS

_TS = re.compile(rb'"timestamp":(\d+)')


def _frames(config: SimConfig, steps: int, wall0_ms: int) -> list[bytes]:
    """Encode every event of the first ``steps`` steps, stamped from ``wall0_ms``, with
    timestamps made relative to ``wall0_ms``."""
    model = MarketModel(config, wall_start_ms=wall0_ms)
    out: list[bytes] = []
    for i in range(steps):
        now = wall0_ms + i * config.tick_ms
        for ev in model.step(now):
            frame = _encode(model, ev, now)
            out.append(_TS.sub(lambda m: b'"timestamp":+%d' % (int(m.group(1)) - wall0_ms), frame))
    return out


def _encode(model: MarketModel, ev: Any, now: int) -> bytes:
    if isinstance(ev, TickerEvent):
        return encode.ticker_data(model, ev.state, now)
    if isinstance(ev, BookEvent):
        return encode.book_change_data(ev, now)
    if isinstance(ev, TradesEvent):
        return encode.trades_data(ev.trades)
    if isinstance(ev, IndexEvent):
        return encode.index_data(ev.price, now)
    assert isinstance(ev, StateEvent)
    return encode.state_data(ev.instrument, ev.state, now)


def test_same_seed_same_frames() -> None:
    cfg = SimConfig(seed=11, start_ms=START_MS, instruments=120, rate_per_s=4000, trades_per_s=50)
    a = _frames(cfg, 300, wall0_ms=1_800_000_000_000)
    b = _frames(cfg, 300, wall0_ms=1_900_000_000_000)
    assert len(a) > 1000
    assert a == b
    kinds = {f[:20] for f in a}
    assert any(k.startswith(b'{"underlying_price"') for k in kinds)  # tickers
    assert any(k.startswith(b'{"type":"change"') for k in kinds)  # books
    assert any(k.startswith(b'[{"trade_seq"') for k in kinds)  # trades
    c = _frames(cfg.replace(seed=12), 300, wall0_ms=1_800_000_000_000)
    assert c[:50] != a[:50]


def test_same_seed_same_chain() -> None:
    cfg = SimConfig(seed=5, start_ms=START_MS)
    one = [i.description() for i in MarketModel(cfg, 0).listed()]
    two = [i.description() for i in MarketModel(cfg, 1).listed()]
    assert one == two
    assert 780 <= len(one) <= 820
    strikes = sorted({d["strike"] for d in one})
    assert strikes[0] < 3000 < strikes[-1]


def _quote_events_per_step(config: SimConfig, steps: int) -> list[int]:
    model = MarketModel(config, wall_start_ms=0)
    return [
        sum(isinstance(ev, TickerEvent | BookEvent) for ev in model.step(1_800_000_000_000 + i * 10))
        for i in range(steps)
    ]


def test_rate_and_bursts() -> None:
    """rate_per_s is met on average (10 ms steps); bursts multiply it inside their window."""
    base = SimConfig(seed=3, start_ms=START_MS, instruments=400, rate_per_s=2000, trades_per_s=0)
    steady = _quote_events_per_step(base, 500)  # 5 s
    assert 1800 <= sum(steady) / 5 <= 2200
    bursty = _quote_events_per_step(base.replace(burst_every_s=2.0, burst_duration_s=0.5, burst_multiplier=4.0), 400)
    in_burst = [n for i, n in enumerate(bursty, start=1) if (i * 0.01) % 2.0 < 0.5]
    outside = [n for i, n in enumerate(bursty, start=1) if (i * 0.01) % 2.0 >= 0.5]
    assert 3.0 <= (sum(in_burst) / len(in_burst)) / (sum(outside) / len(outside)) <= 5.0
    # 100,000/s over 800 instruments: the per-channel spacing drops to one step (10 ms)
    fast = SimConfig(seed=3, start_ms=START_MS, rate_per_s=100_000, trades_per_s=0)
    assert fast.effective_min_interval_ms == 10
    per_step = _quote_events_per_step(fast, 50)
    assert 90_000 <= sum(per_step[10:]) / 0.4 <= 110_000


def test_cached_encodings_match_fresh_ones() -> None:
    """The incremental top of book and the cached ticker bodies never go stale: at a
    high rate (every channel emits every step) each ticker equals one encoded from scratch."""
    cfg = SimConfig(seed=4, start_ms=START_MS, instruments=120, rate_per_s=50_000, trades_per_s=200)
    model = MarketModel(cfg, wall_start_ms=0)
    checked = 0
    for i in range(400):
        now = 1_800_000_000_000 + i * 10
        for ev in model.step(now):
            if not isinstance(ev, TickerEvent | BookEvent):
                continue
            st = ev.state
            bid = max(st.bids) if st.bids else 0.0
            ask = min(st.asks) if st.asks else 0.0
            assert st.top == (bid, st.bids.get(bid, 0.0), ask, st.asks.get(ask, 0.0))
            if isinstance(ev, TickerEvent):
                cached = encode.ticker_data(model, st, now)
                st.tbody_key = None
                st.tcache = None
                st.stats_key = (-1, -1)
                st.bid_iv_key = st.ask_iv_key = (-1.0, -1)
                assert cached == encode.ticker_data(model, st, now)
                checked += 1
    assert checked > 10_000
