"""The simulator's native hot path (``tickarchive_native.SimEngine``, ``native/src/sim.rs``).

With the extension built and ``TICKARCHIVE_NATIVE`` not ``0`` (read at import), the
simulator's ``MarketModel`` hands every listed option to a ``SimEngine``, which runs the
options' per-step loop (emission draws, repricing, book changes, sub-step timestamps)
and encodes, frames and records the step's option ticker and book notifications in one
call (``MarketModel.step_native``). The engine also holds each currency's change-id
counter (the Python-owned books of futures and combos take their ids from it). Python
keeps everything else: listings and the life cycle, the index walks and the volatility
surface (whose per-expiry terms it hands over each reprice), futures, the perpetual,
combos, trades, the control plane, subscriptions and fan-out, faults, the send log.
Without it the pure Python model (``MarketModel.step`` + ``encode``) runs.

The engine follows the Python model's rules (``quoting``: the same parameters, targets,
IVs, nulls and ticker fields; tests/loadtest/test_sim_native.py compares them number by
number) but draws from its own generator (seeded from ``SimConfig.seed``): the same seed
gives the same frames, not the pure-Python model's frames.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import orjson

from tickarchive import native_ext
from tickarchive.loadtest.sim import quoting, ticks
from tickarchive.loadtest.sim.config import SimConfig

if TYPE_CHECKING:
    from tickarchive.loadtest.sim.quoting import OptionState
    from tickarchive.loadtest.sim.surface import CurrencyMarket, Terms

_ext: ModuleType | None = native_ext.EXT

AVAILABLE: Final = _ext is not None and hasattr(_ext, "SimEngine")
"""The extension imported and has the simulator engine."""

SWITCHED_OFF: Final = native_ext.SWITCHED_OFF
"""``TICKARCHIVE_NATIVE=0``: the native path deliberately off (A/B runs, fallback tests)."""

ENABLED: Final = AVAILABLE and not SWITCHED_OFF
"""``AVAILABLE`` and not switched off with ``TICKARCHIVE_NATIVE=0``."""


def new_engine(config: SimConfig) -> Any:
    """A ``SimEngine`` for ``config`` (``ticks.UNIT_PRICES`` and ``quoting.SIZES``, so
    book prices and sizes are the very floats the Python model uses)."""
    if _ext is None or not AVAILABLE:
        raise RuntimeError("tickarchive_native.SimEngine is not available")
    return _ext.SimEngine(ticks.UNIT_PRICES, list(quoting.SIZES), config.seed & (2**64 - 1))


def add_currency(engine: Any, market: CurrencyMarket) -> int:
    cur: int = engine.add_currency(market.change_id, market.index_price, 10.0**market.mark_digits)
    return cur


def set_terms(engine: Any, rows: list[tuple[int, Terms]]) -> None:
    engine.set_terms([(i, t.t_years, t.forward, t.atm, t.skew, t.curv, t.sqrt_t, t.forward_2) for i, t in rows])


def _stats(st: OptionState) -> tuple[int, float | None, float, float, float, float, float]:
    return (st.trade_seq, st.last_price, st.volume, st.open_interest, st.low, st.high, st.open_price)


def set_trade(engine: Any, st: OptionState) -> None:
    """After a trade of ``st``: what its tickers show of its trading."""
    engine.set_trade(st.nid, *_stats(st)[:6])


def set_settlement(engine: Any, st: OptionState) -> None:
    engine.set_settlement(st.nid, st.settlement_price, st.open_price)


def register(engine: Any, st: OptionState, expiry_id: int) -> int:
    """Hand ``st`` (listed, priced and seeded by the model; its expiry's id in the
    engine's terms table) to ``engine``; its id."""
    inst = st.inst
    p = st.params
    nid: int = engine.add_option(
        inst.name,
        inst.ticker_100[0],
        inst.book_100[0],
        st.cur,
        expiry_id,
        inst.strike,
        inst.is_call,
        orjson.dumps(inst.expiry.underlying_index),
        (p.half_iv, p.depth_bid, p.depth_ask, list(p.gaps), p.size_scale),
        list(st.bids.items()),
        list(st.asks.items()),
        st.targets,
        st.targets_version,
        st.change_id,
        st.book_ts_ms,
        _stats(st),
        st.settlement_price,
        (st.last_ticker_step, st.last_book_step),
    )
    if st.expired:
        engine.expire(nid, st.delivery_price, st.change_id, st.book_ts_ms)
    return nid
