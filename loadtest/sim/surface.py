"""One currency's market: index random walk and the implied-volatility surface (pure).

ATM volatility by time to expiry ``T`` (years)::

    atm(T) = level + short · e^(-T/τs) + hump · (T/τh) · e^(1 - T/τh)

with τs = 0.06 y and τh = 0.2 y, so ``short < 0`` gives a rising term structure (real ETH
chain of 2026-01-01: 35 % → 65 %), ``short > 0`` an inverted one, ``hump`` a bump or dip
in the middle (2026-08-22: 59 → 54 → 56 %). The smile at one expiry is
``atm + skew·x + curv·x²`` in normalised moneyness ``x = ln(K/F)/√T`` (clamped to ±4),
one volatility per strike, shared by the call and the put. The five parameters move as
mean-reverting (Ornstein–Uhlenbeck) processes on the simulated clock, started from
their stationary distribution by the seed: different seeds, and one seed over simulated
weeks, give rising, inverted and humped term structures.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tickarchive.loadtest.sim import ticks

TAU_SHORT_Y = 0.06
TAU_HUMP_Y = 0.2
MIN_T_YEARS = 1.0 / (365.0 * 24 * 60)  # one minute
CARRY = {"ETH": 0.05, "BTC": 0.06}
MARK_DIGITS = {"ETH": 6, "BTC": 8}
"""Decimals of an option's mark price (real tickers: ETH 0.001972, BTC 0.03847784): a far
wing's mark rounds to 0."""
"""Annual basis of futures over the index (forward = spot · e^(carry·T))."""


@dataclass(frozen=True, slots=True)
class OU:
    """A mean-reverting parameter: mean, stationary standard deviation, reversion per year."""

    mean: float
    sd: float
    theta: float
    lo: float
    hi: float


PARAMS: dict[str, dict[str, OU]] = {
    cur: {
        "level": OU(level, 0.08, 2.0, 0.25, 1.6),
        "short": OU(0.0, 0.12, 12.0, -0.45, 0.6),
        "hump": OU(0.0, 0.05, 12.0, -0.15, 0.15),
        "skew": OU(-0.03, 0.02, 12.0, -0.12, 0.06),
        "curv": OU(0.025, 0.008, 12.0, 0.005, 0.06),
    }
    for cur, level in (("ETH", 0.46), ("BTC", 0.40))
}
NAMES = ("level", "short", "hump", "skew", "curv")


@dataclass(frozen=True, slots=True)
class Terms:
    """What pricing an option of one expiry needs at one moment."""

    t_years: float
    forward: float
    atm: float
    skew: float
    curv: float
    sqrt_t: float
    forward_2: float
    """The forward rounded to cents: the ticker's ``underlying_price``."""


class CurrencyMarket:
    """Index and volatility surface of one currency."""

    __slots__ = (
        "carry",
        "change_id",
        "currency",
        "index_name",
        "index_price",
        "mark_digits",
        "params",
        "spot",
        "trade_id",
    )

    def __init__(self, currency: str, spot: float, rng: random.Random) -> None:
        self.currency = currency
        self.index_name = f"{currency.lower()}_usd"
        self.spot = spot
        self.index_price = round(spot, 2)
        self.carry = CARRY[currency]
        self.mark_digits = MARK_DIGITS[currency]
        spec = PARAMS[currency]
        self.params = [min(spec[n].hi, max(spec[n].lo, rng.gauss(spec[n].mean, spec[n].sd))) for n in NAMES]
        self.change_id = 10_000_000_000 + rng.randrange(10**9) if currency == "ETH" else 30_000_000_000 + rng.randrange(
            10**9
        )
        """Deribit's change ids: one counter per currency (all of its books)."""
        self.trade_id = 300_000_000 + rng.randrange(10_000_000)

    def walk(self, rng: random.Random, annual_vol: float, dt_years: float) -> None:
        """One step of the index (geometric random walk) and of the surface's parameters."""
        z = rng.gauss(0.0, 1.0)
        self.spot *= math.exp(annual_vol * math.sqrt(dt_years) * z - 0.5 * annual_vol * annual_vol * dt_years)
        self.index_price = round(self.spot, 2)
        spec = PARAMS[self.currency]
        for i, n in enumerate(NAMES):
            p = spec[n]
            x = self.params[i]
            x += p.theta * (p.mean - x) * dt_years + p.sd * math.sqrt(2.0 * p.theta * dt_years) * rng.gauss(0.0, 1.0)
            self.params[i] = min(p.hi, max(p.lo, x))

    def atm(self, t_years: float) -> float:
        level, short, hump, _skew, _curv = self.params
        h = t_years / TAU_HUMP_Y
        v = level + short * math.exp(-t_years / TAU_SHORT_Y) + hump * h * math.exp(1.0 - h)
        return max(0.32, min(2.0, v))

    def forward(self, t_years: float) -> float:
        return self.spot * math.exp(self.carry * t_years)

    def terms(self, expiry_ms: int, sim_ms: int, year_ms: float) -> Terms:
        t = max((expiry_ms - sim_ms) / year_ms, MIN_T_YEARS)
        forward = self.forward(t)
        return Terms(t, forward, self.atm(t), self.params[3], self.params[4], math.sqrt(t), round(forward, 2))


def smile_vol(terms: Terms, strike: float) -> float:
    """The implied volatility of ``strike`` (call and put alike)."""
    x = math.log(strike / terms.forward) / terms.sqrt_t
    x = max(-4.0, min(4.0, x))
    return max(0.15, min(3.0, terms.atm + terms.skew * x + terms.curv * x * x))


fround = ticks.fround
