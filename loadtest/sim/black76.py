"""Black-76 option values and greeks, and the volatility smile (pure math, no numpy).

Deribit quotes ETH options in ETH: the coin price is the USD Black-76 value divided by
the underlying (forward) price. Greeks are reported in USD terms as on Deribit: delta,
gamma per USD, vega per volatility point, theta per calendar day, rho per rate point.
"""

from __future__ import annotations

import math
from typing import NamedTuple

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
MIN_T_YEARS = 1.0 / (365.0 * 24 * 60)  # one minute


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


class Valuation(NamedTuple):
    price_coin: float
    """Option value in the base coin (USD value / forward)."""
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float


def black76(forward: float, strike: float, t_years: float, vol: float, is_call: bool, rate: float = 0.0) -> Valuation:
    """Value and greeks of a European option on a forward."""
    t = max(t_years, MIN_T_YEARS)
    sig_sqrt_t = vol * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sig_sqrt_t * sig_sqrt_t) / sig_sqrt_t
    d2 = d1 - sig_sqrt_t
    disc = math.exp(-rate * t)
    pdf = norm_pdf(d1)
    if is_call:
        nd1, nd2 = norm_cdf(d1), norm_cdf(d2)
        usd = disc * (forward * nd1 - strike * nd2)
        delta = disc * nd1
        rho = strike * t * disc * nd2 / 100.0
    else:
        nd1, nd2 = norm_cdf(-d1), norm_cdf(-d2)
        usd = disc * (strike * nd2 - forward * nd1)
        delta = -disc * nd1
        rho = -strike * t * disc * nd2 / 100.0
    gamma = disc * pdf / (forward * sig_sqrt_t)
    vega = disc * forward * pdf * math.sqrt(t) / 100.0
    theta = -disc * forward * pdf * vol / (2.0 * math.sqrt(t)) / 365.0
    return Valuation(max(usd, 0.0) / forward, delta, gamma, vega, theta, rho)


def smile_vol(atm_vol: float, forward: float, strike: float, t_years: float, skew: float, curvature: float) -> float:
    """A smile in normalised log-moneyness: ``atm + skew*k + curvature*k²`` with
    ``k = ln(K/F)/sqrt(T)``, clamped to [0.15, 3.0]."""
    k = math.log(strike / forward) / math.sqrt(max(t_years, MIN_T_YEARS))
    k = max(-4.0, min(4.0, k))
    return max(0.15, min(3.0, atm_vol + skew * k + curvature * k * k))


def atm_term_vol(base_vol: float, t_years: float) -> float:
    """ATM volatility term structure: short expiries a bit richer than long ones."""
    return base_vol * (1.0 + 0.25 * math.exp(-t_years * 24.0))
