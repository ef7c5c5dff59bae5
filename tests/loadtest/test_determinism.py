"""Same seed, same market: the first frames are identical modulo wall-clock timestamps."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import orjson
import pytest

from tickarchive.loadtest.sim import SimConfig, black76, encode, quoting
from tickarchive.loadtest.sim.market import (
    BookEvent,
    IndexEvent,
    MarketModel,
    StateEvent,
    TickerEvent,
    TradesEvent,
    fround,
)
from tickarchive.loadtest.sim.surface import smile_vol

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
        return encode.ticker_data(model, ev.state, ev.ts_ms)
    if isinstance(ev, BookEvent):
        return encode.book_change_data(ev)
    if isinstance(ev, TradesEvent):
        return encode.trades_data(ev.trades)
    if isinstance(ev, IndexEvent):
        return encode.index_data(ev.index_name, ev.price, ev.ts_ms)
    assert isinstance(ev, StateEvent)
    return encode.state_data(ev.instrument, ev.state, now)


def test_same_seed_same_frames() -> None:
    cfg = SimConfig(
        seed=11,
        start_ms=START_MS,
        instruments=120,
        rate_per_s=4000,
        trades_per_s=50,
        currencies=("ETH", "BTC"),
        kinds=("option", "future", "option_combo"),
    )
    a = _frames(cfg, 300, wall0_ms=1_800_000_000_000)
    b = _frames(cfg, 300, wall0_ms=1_900_000_000_000)
    assert len(a) > 1000
    assert a == b
    kinds = {f[:20] for f in a}
    assert any(k.startswith(b'{"underlying_price"') for k in kinds)  # option tickers
    assert any(k.startswith(b'{"stats"') for k in kinds)  # future tickers
    assert any(k.startswith(b'{"type":"change"') for k in kinds)  # books
    assert any(k.startswith(b'[{"trade_seq"') for k in kinds)  # trades
    c = _frames(cfg.replace(seed=12), 300, wall0_ms=1_800_000_000_000)
    assert c[:50] != a[:50]


def test_same_seed_same_chain() -> None:
    cfg = SimConfig(seed=5, start_ms=START_MS)
    one = [i.description() for i in MarketModel(cfg, 0).listed()]
    two = [i.description() for i in MarketModel(cfg, 1).listed()]
    assert one == two
    assert 600 <= len(one) <= 1000  # Deribit's ETH chains: 688 and 932 options (2026)
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
                cached = encode.ticker_data(model, st, ev.ts_ms)
                st.tbody_key = None
                assert cached == encode.ticker_data(model, st, ev.ts_ms)
                assert cached == orjson.dumps({**encode.ticker_dict(model, st), "timestamp": ev.ts_ms})
                checked += 1
    assert checked > 10_000


def test_pricing_is_black76_on_the_surface() -> None:
    """``quoting.reprice`` gives the floats of ``black76.black76`` at the surface's
    volatility for the strike (one IV per strike: the call's and the put's are equal)."""
    cfg = SimConfig(seed=9, start_ms=START_MS, instruments=150, rate_per_s=20_000, trades_per_s=100, time_scale=20000)
    model = MarketModel(cfg, wall_start_ms=0)
    checked = 0
    for i in range(300):
        model.step(1_800_000_000_000 + i * 10)
        if i % 50:
            continue
        for st in model.states.values():
            if not isinstance(st, quoting.OptionState) or st.expired:
                continue
            model.ensure_priced(st)
            terms = model.terms_of(st)
            vol = smile_vol(terms, st.inst.strike)
            ref = black76.black76(terms.forward, st.inst.strike, terms.t_years, vol, st.inst.is_call)
            assert tuple(st.val) == pytest.approx(tuple(ref), rel=1e-12, abs=1e-15)
            assert st.mark_iv == round(vol * 100.0, 2)
            checked += 1
    assert checked > 500


def test_fround_is_round() -> None:
    """``market.fround`` gives ``round``'s floats bit for bit (the sign of zero included),
    near halves, on ties, for tiny, huge and non-finite values."""
    rng = random.Random(5)
    values = [0.0, -0.0, 0.125, -0.125, 2.675, 1e-9, -1e-9, 5e-6, -5e-6, 1e12, -1e12, math.inf, -math.inf, math.nan]
    values += [rng.uniform(-50.0, 50.0) * 10.0 ** rng.randint(-7, 4) for _ in range(100_000)]
    values += [(n + 0.5) / 10.0**k for n in range(-2000, 2000) for k in (2, 4, 5, 8)]
    for x in values:
        for ndigits in (2, 4, 5, 8):
            want = round(x, ndigits)
            got = fround(x, 10.0**ndigits, ndigits)
            assert repr(got) == repr(want), (x, ndigits)  # repr: -0.0 and nan included
