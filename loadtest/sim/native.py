"""The simulator's native hot path (``tickarchive_native.SimEngine``, ``native/src/sim.rs``).

With the extension built and ``TICKARCHIVE_NATIVE`` not ``0`` (read at import), the
simulator's ``MarketModel`` hands every listed option to a ``SimEngine``, which runs the
per-step loop (emission draws, repricing, book changes) and encodes, frames and records
the step's ticker and book notifications in one call (``MarketModel.step_native``).
Python keeps everything else: listings and expiries, the index walk, trades, the
control plane, subscriptions and fan-out, faults, the send log. Without it the pure
Python model (``MarketModel.step`` + ``encode``) runs, as before.

The engine draws from its own generator (seeded from ``SimConfig.seed``): the same seed
gives the same frames, but not the same frames as the pure-Python model.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import orjson

from tickarchive import native_ext
from tickarchive.loadtest.sim import black76
from tickarchive.loadtest.sim.chain import YEAR_MS
from tickarchive.loadtest.sim.config import SimConfig

if TYPE_CHECKING:
    from tickarchive.loadtest.sim.market import OptionState

_ext: ModuleType | None = native_ext.EXT

AVAILABLE: Final = _ext is not None and hasattr(_ext, "SimEngine")
"""The extension imported and has the simulator engine."""

SWITCHED_OFF: Final = native_ext.SWITCHED_OFF
"""``TICKARCHIVE_NATIVE=0``: the native path deliberately off (A/B runs, fallback tests)."""

ENABLED: Final = AVAILABLE and not SWITCHED_OFF
"""``AVAILABLE`` and not switched off with ``TICKARCHIVE_NATIVE=0``."""


def new_engine(config: SimConfig, tick_prices: list[float]) -> Any:
    """A ``SimEngine`` for ``config`` (``tick_prices`` = ``market._TICK_PRICES``, so
    book prices are the very floats the Python model uses)."""
    if _ext is None or not AVAILABLE:
        raise RuntimeError("tickarchive_native.SimEngine is not available")
    return _ext.SimEngine(
        tick_prices, config.book_levels, config.seed & (2**64 - 1), float(YEAR_MS), black76.MIN_T_YEARS
    )


def trade_stats(st: OptionState) -> tuple[int, float, float, float, float, float]:
    """What the engine's tickers show of ``st``'s trading: trade_seq, last price (0.0
    before the first trade), volume, open interest, low, high."""
    last = st.last_price if st.last_price is not None else 0.0
    return (st.trade_seq, last, st.volume, st.open_interest, st.low, st.high)


def register(engine: Any, st: OptionState) -> int:
    """Hand ``st`` (listed, priced and seeded by the model) to ``engine``; its id."""
    inst = st.inst
    mid1 = (
        b',"underlying_index":'
        + orjson.dumps(inst.expiry.underlying_index)
        + b',"state":'
        + orjson.dumps(inst.state)
        + b',"settlement_price":'
        + orjson.dumps(round(st.open_price, 8))
        + b',"min_price":'
    )
    mid2 = b',"interest_rate":0.0,"instrument_name":' + orjson.dumps(inst.name) + b',"index_price":'
    nid: int = engine.add_option(
        inst.name,
        inst.ticker_100[0],
        inst.book_100[0],
        inst.strike,
        inst.is_call,
        inst.expiry_ms,
        mid1,
        mid2,
        list(st.bids.items()),
        list(st.asks.items()),
        st.targets,
        st.targets_version,
        st.change_id,
        st.book_ts_ms,
        (*trade_stats(st), st.open_price),
        (st.last_ticker_step, st.last_book_step),
    )
    return nid
