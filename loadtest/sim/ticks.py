"""Price grids and rounding (pure): Deribit's tick rules, as the model and the native
engine both use them.

Options (since 2023-07-06, ``tick_size_steps``): 0.0001 up to a price of 0.005, 0.0005
above. Prices are handled as integer units of 0.0001 (``n``): valid when ``n <= 50`` or
``n`` is a multiple of 5; ``unit_price(n)`` is the float Deribit prints for it. Option
combos keep a flat 0.0001 tick. Futures: BTC perpetual 0.5, BTC dated 2.5, ETH perpetual
0.05, ETH dated 0.25 (the instrument lists of 2025).
"""

from __future__ import annotations

import math
from typing import Final

UNIT: Final = 0.0001
"""The finest option tick (coin)."""
STEP_ABOVE_UNITS: Final = 50
"""Above 0.005 (50 units) the option tick is 0.0005 (5 units)."""
COARSE: Final = 5
TICK_SIZE: Final = 0.0001
"""``tick_size`` of an option in ``get_instruments`` (the finest step)."""
TICK_SIZE_STEPS: Final = ({"above_price": 0.005, "tick_size": 0.0005},)
FUTURE_TICKS: Final = {("BTC", True): 0.5, ("BTC", False): 2.5, ("ETH", True): 0.05, ("ETH", False): 0.25}
"""(currency, perpetual) -> tick size (USD)."""

UNIT_PRICES: Final = [round(n * UNIT, 4) for n in range(60_001)]
"""``unit_price(n)`` for n up to 6.0 coin (deep in-the-money puts reach a few coin)."""


def unit_price(n: int) -> float:
    """The price of ``n`` units of 0.0001, as the float Deribit would print."""
    return UNIT_PRICES[n] if 0 <= n < len(UNIT_PRICES) else round(n * UNIT, 4)


def valid_down(n: int) -> int:
    """The largest valid option price (units) at or below ``n``."""
    return n if n <= STEP_ABOVE_UNITS else n - n % COARSE


def valid_up(n: int) -> int:
    """The smallest valid option price (units) at or above ``n``."""
    return n if n <= STEP_ABOVE_UNITS else n + (-n) % COARSE


def next_down(n: int) -> int:
    """The valid option price just below the valid price ``n``."""
    return n - 1 if n <= STEP_ABOVE_UNITS else n - COARSE


def next_up(n: int) -> int:
    """The valid option price just above the valid price ``n``."""
    return n + 1 if n < STEP_ABOVE_UNITS else n + COARSE


def units_floor(price: float) -> int:
    return math.floor(price / UNIT + 1e-9)


def units_ceil(price: float) -> int:
    return math.ceil(price / UNIT - 1e-9)


_floor = math.floor


def fround(x: float, scale: float, ndigits: int) -> float:
    """``round(x, ndigits)`` (``scale = 10.0 ** ndigits``), bit for bit, about twice as fast.

    ``round`` goes through a decimal string and back. Here ``r`` = the nearest integer to
    ``x * scale``, and ``r / scale`` is the correctly rounded quotient, i.e. the double
    nearest to the decimal ``r``e-``ndigits``, which is what ``round`` returns. That holds
    whenever ``r`` is right: ``x * scale`` carries a rounding error far below 1e-4 for
    ``|x * scale| < 1e9``, so a fraction within 1e-4 of one half (a possible tie or a
    misrounding) falls back to ``round``, as do 0 (``round`` keeps the sign of -0.0),
    NaN and large values."""
    y = x * scale
    if -1e9 < y < 1e9:
        r = _floor(y + 0.5)
        if r and -0.4999 < y - r < 0.4999:
            return r / scale
    return round(x, ndigits)


def grid_round(price: float, tick: float, up: bool) -> float:
    """``price`` on a ``tick`` grid (futures), rounded up or down, printed as Deribit would."""
    n = math.ceil(price / tick - 1e-9) if up else math.floor(price / tick + 1e-9)
    return round(n * tick, 4)
