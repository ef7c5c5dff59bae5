"""The instruments: expiry schedule, Deribit's strike grid, names, listings (pure).

Expiries are at 08:00 UTC as on Deribit: a few dailies, weeklies (Fridays), monthlies
(last Friday of the month) and quarterlies (last Friday of Mar/Jun/Sep/Dec), the longest
period winning where they coincide. Names follow Deribit (day without zero padding):
options ``ETH-6AUG21-2800-C``, dated futures ``BTC-27JUN25``, the perpetual
``ETH-PERPETUAL``, option combos ``BTC-CS-19MAY26-70000_75000``.

The strike grid is the one measured on 1,340 daily ``get_instruments`` snapshots
(docs/simulator.md): a step near the money that grows with the time to expiry (as a
share of spot: ~0.7 % for dailies, ~1–1.4 % weeklies, ~1.5–3 % monthlies, ~5 % beyond
six months), doubled from 5 % away from spot, and wider again in the wings (5×, 10×,
20×), over a range that widens with the expiry (dailies ~0.82–1.2 × spot, weeklies
~0.7–1.45, monthlies ~0.4–2.5, quarterlies ~0.25–4.3). Steps are "nice" round numbers,
so one expiry holds 3–5 distinct steps.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from tickarchive.loadtest.sim import ticks
from tickarchive.loadtest.sim.config import index_name

DAY_MS = 86_400_000
EXPIRY_HOUR_UTC = 8
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
YEAR_MS = 365.0 * DAY_MS
TICK_SIZE = ticks.TICK_SIZE

OPTION = "option"
FUTURE = "future"
COMBO = "option_combo"


def expiry_code(expiry_ms: int) -> str:
    d = dt.datetime.fromtimestamp(expiry_ms / 1000, tz=dt.UTC)
    return f"{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"


def strike_text(strike: float) -> str:
    return str(int(strike)) if strike == int(strike) else f"{strike:g}".replace(".", "d")


@dataclass(slots=True)
class Expiry:
    expiry_ms: int
    period: str
    """Deribit settlement_period: day, week or month (quarterlies are 'month')."""
    underlying_index: str
    """Name of the underlying future, or SYN.<future> when no real future exists."""
    currency: str = "ETH"

    @property
    def code(self) -> str:
        return expiry_code(self.expiry_ms)


@dataclass(slots=True)
class Instrument:
    name: str
    instrument_id: int
    strike: float
    is_call: bool
    expiry: Expiry
    creation_ms: int
    state: str = "open"
    weight: float = 1.0
    """Relative activity: near-the-money and short-dated instruments trade and quote more."""
    kind: str = OPTION
    """option, future (dated or perpetual) or option_combo."""
    legs: tuple[tuple[str, float], ...] = ()
    """An option combo's legs: (instrument, signed ratio)."""
    channels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Channel kind ('ticker', 'book', 'trades') -> channel names carrying it."""

    ticker_100: tuple[str] = ("",)
    """``(ticker.{name}.100ms,)``: the channels to check when nobody uses agg2."""
    book_100: tuple[str] = ("",)

    def __post_init__(self) -> None:
        self.channels = {
            kind: (f"{kind}.{self.name}.100ms", f"{kind}.{self.name}.agg2") for kind in ("ticker", "book", "trades")
        }
        self.ticker_100 = (self.channels["ticker"][0],)
        self.book_100 = (self.channels["book"][0],)

    @property
    def expiry_ms(self) -> int:
        return self.expiry.expiry_ms

    @property
    def currency(self) -> str:
        return self.expiry.currency

    @property
    def perpetual(self) -> bool:
        return self.expiry.period == "perpetual"

    def description(self) -> dict[str, Any]:
        """The ``public/get_instruments`` entry (field names and types as on Deribit)."""
        cur = self.currency
        common = {
            "price_index": index_name(cur),
            "kind": self.kind,
            "is_active": self.state == "open",
            "instrument_name": self.name,
            "instrument_id": self.instrument_id,
            "expiration_timestamp": self.expiry.expiry_ms,
            "creation_timestamp": self.creation_ms,
            "counter_currency": "USD",
            "base_currency": cur,
            "settlement_period": self.expiry.period,
            "settlement_currency": cur,
        }
        if self.kind == FUTURE:
            return {
                "tick_size": ticks.FUTURE_TICKS[(cur, self.perpetual)],
                "tick_size_steps": [],
                "taker_commission": 0.0005,
                "rfq": False,
                "quote_currency": "USD",
                "min_trade_amount": 10.0 if cur == "BTC" else 1.0,
                "max_liquidation_commission": 0.0075,
                "max_leverage": 50 if self.perpetual else 25,
                "maker_commission": -0.0001 if not self.perpetual else 0.0,
                "instrument_type": "reversed",
                "future_type": "reversed",
                "contract_size": 10.0 if cur == "BTC" else 1.0,
                "block_trade_tick_size": 0.01,
                "block_trade_min_trade_amount": 200000,
                "block_trade_commission": 0.00025,
                **common,
            }
        if self.kind == COMBO:
            return {
                "tick_size": TICK_SIZE,
                "tick_size_steps": [],
                "taker_commission": 0.0,
                "state": self.state,
                "quote_currency": cur,
                "min_trade_amount": 0.1 if cur == "BTC" else 1.0,
                "maker_commission": 0.0,
                "instrument_type": "reversed",
                "contract_size": 1.0,
                **common,
            }
        return {
            "tick_size": TICK_SIZE,
            "tick_size_steps": [dict(s) for s in ticks.TICK_SIZE_STEPS],
            "taker_commission": 0.0003,
            "strike": self.strike,
            "quote_currency": cur,
            "option_type": "call" if self.is_call else "put",
            "min_trade_amount": 0.1 if cur == "BTC" else 1.0,
            "maker_commission": 0.0003,
            "instrument_type": "reversed",
            "contract_size": 1.0,
            "block_trade_tick_size": 0.0001,
            "block_trade_min_trade_amount": 25 if cur == "BTC" else 250,
            "block_trade_commission": 0.0003,
            **common,
        }


def _at_expiry_hour(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, EXPIRY_HOUR_UTC, tzinfo=dt.UTC).timestamp() * 1000)


def _last_friday(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - dt.timedelta(days=1)
    return d - dt.timedelta(days=(d.weekday() - 4) % 7)


def expiry_schedule(
    now_ms: int,
    currency: str = "ETH",
    dailies: int = 4,
    weeklies: int = 3,
    monthlies: int = 3,
    quarterlies: int = 3,
) -> list[Expiry]:
    """The option expiries listed at ``now_ms``: ``dailies`` next days, ``weeklies`` next
    Fridays, ``monthlies`` next month-ends, ``quarterlies`` next quarter-ends
    (deduplicated; the longest period wins). Deribit lists 11–13 per currency."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).date()
    found: dict[int, str] = {}
    rank = {"day": 0, "week": 1, "month": 2}

    def add(day: dt.date, period: str) -> None:
        ms = _at_expiry_hour(day)
        if ms <= now_ms:
            return
        if ms not in found or rank[period] > rank[found[ms]]:
            found[ms] = period

    d = today
    n = 0
    while n < dailies:
        if _at_expiry_hour(d) > now_ms:
            add(d, "day")
            n += 1
        d += dt.timedelta(days=1)
    d = today + dt.timedelta(days=(4 - today.weekday()) % 7)
    n = 0
    while n < weeklies:
        if _at_expiry_hour(d) > now_ms:
            add(d, "week")
            n += 1
        d += dt.timedelta(days=7)
    months: list[dt.date] = []
    y, m = today.year, today.month
    while len(months) < monthlies + 12:
        lf = _last_friday(y, m)
        if _at_expiry_hour(lf) > now_ms:
            months.append(lf)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    for lf in months[:monthlies]:
        add(lf, "month")
    quarters = [lf for lf in months[monthlies:] if lf.month in (3, 6, 9, 12)]
    for lf in quarters[:quarterlies]:
        add(lf, "month")
    out = []
    for ms in sorted(found):
        period = found[ms]
        code = expiry_code(ms)
        underlying = f"{currency}-{code}" if period == "month" else f"SYN.{currency}-{code}"
        out.append(Expiry(ms, period, underlying, currency))
    return out


def future_expiries(options: list[Expiry]) -> list[Expiry]:
    """The dated futures: one per weekly, monthly and quarterly option expiry (Deribit's
    2025 lists: 7 per currency), named like the option expiry code."""
    return [Expiry(e.expiry_ms, e.period, f"{e.currency}-{e.code}", e.currency) for e in options if e.period != "day"]


PERPETUAL_EXPIRY_MS = 32_503_680_000_000
"""The perpetual's ``expiration_timestamp`` on Deribit (3000-01-01)."""


def perpetual_expiry(currency: str) -> Expiry:
    return Expiry(PERPETUAL_EXPIRY_MS, "perpetual", f"{currency}-PERPETUAL", currency)


# ---------------------------------------------------------------------------- strike grid

_NICE = (1.0, 2.0, 2.5, 5.0)


def nice_step(x: float) -> float:
    """The round number (1, 2, 2.5 or 5 × 10^k) nearest to ``x`` in log terms."""
    if x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    best = 1.0
    err = math.inf
    for m in (*_NICE, 10.0):
        v = m * 10.0**k
        e = abs(math.log(v / x))
        if e < err:
            best, err = v, e
    return best


@dataclass(frozen=True, slots=True)
class GridRule:
    """Deribit's grid for one time-to-expiry band: the step near the money as a share of
    spot, and the listed range of strike/spot."""

    near_pct: float
    lo: float
    hi: float


def grid_rule(currency: str, days: float) -> GridRule:
    """The grid band of an expiry ``days`` away (measured 2024-05..2025-05)."""
    btc = currency == "BTC"
    if days <= 3.0:
        return GridRule(0.0055 if btc else 0.0085, 0.84 if btc else 0.80, 1.18 if btc else 1.30)
    if days <= 21.0:
        return GridRule(0.0105 if btc else 0.014, 0.76 if btc else 0.74, 1.45 if btc else 1.40)
    if days <= 95.0:
        return GridRule(0.015 if btc else 0.028, 0.35 if btc else 0.42, 2.3 if btc else 2.5)
    if days <= 190.0:
        return GridRule(0.017 if btc else 0.028, 0.22 if btc else 0.28, 4.2 if btc else 4.5)
    return GridRule(0.052 if btc else 0.028, 0.24 if btc else 0.29, 4.2 if btc else 4.3)


def natural_strikes(spot: float, currency: str, days: float) -> list[float]:
    """Every strike of Deribit's grid for an expiry ``days`` away at ``spot``: the near
    step within 5 % of spot, then steps of about 1.2 % of spot to 20 % away, 5 % to 60 %,
    12 % beyond and 25 % past 2.5× spot (never finer than the near step), each strike a
    multiple of its step."""
    rule = grid_rule(currency, days)
    base = nice_step(rule.near_pct * spot)
    lo, hi = spot * rule.lo, spot * rule.hi
    zones = [max(base, nice_step(pct * spot)) for pct in (0.012, 0.05, 0.12, 0.25)]

    def step_at(k: float) -> float:
        m = abs(k / spot - 1.0)
        if m <= 0.05:
            return base
        if m <= 0.20:
            return zones[0]
        if m <= 0.60:
            return zones[1]
        return zones[2] if k < 2.5 * spot else zones[3]

    out = {float(round(spot / base) * base)}
    k = min(out)
    while True:
        s = step_at(k)
        k = math.floor((k - 1e-9) / s) * s
        if k < lo or k <= 0:
            break
        out.add(float(k))
    k = max(out)
    while True:
        s = step_at(k)
        k = math.ceil((k + 1e-9) / s) * s
        if k > hi:
            break
        out.add(float(k))
    return sorted(out)


def trim_strikes(strikes: list[float], spot: float, count: int) -> list[float]:
    """The ``count`` strikes of ``strikes`` nearest to spot (in log distance), ascending."""
    if count >= len(strikes):
        return list(strikes)
    near = sorted(strikes, key=lambda k: (abs(math.log(k / spot)), k))[: max(count, 1)]
    return sorted(near)


LISTING_DAYS = {"day": 3.0, "week": 21.0, "month": 92.0}
"""How far ahead Deribit lists each period (dailies 3 days, weeklies 22, monthlies ~92,
quarterlies a year): the grid an expiry gets at listing."""


def near_strikes(spot: float, currency: str, days: float, width: float = 0.05) -> list[float]:
    """The grid's strikes within ``width`` of spot for an expiry ``days`` away: what
    Deribit adds near the money as an expiry approaches or spot moves."""
    return [k for k in natural_strikes(spot, currency, days) if abs(k / spot - 1.0) <= width]


def expiry_strikes(spot: float, expiry: Expiry, now_ms: int) -> list[float]:
    """The strikes of an expiry: the grid of its listing (range and wing steps by how far
    ahead its period is listed) plus the finer near-the-money strikes of its time to
    expiry now."""
    days = max((expiry.expiry_ms - now_ms) / DAY_MS, 0.0)
    listing = max(days, LISTING_DAYS.get(expiry.period, days))
    grid = set(natural_strikes(spot, expiry.currency, listing))
    coarse = nice_step(grid_rule(expiry.currency, listing).near_pct * spot)
    fine = nice_step(grid_rule(expiry.currency, days).near_pct * spot)
    if fine < coarse and coarse % fine == 0:  # a finer grid that contains the coarser one
        grid |= set(near_strikes(spot, expiry.currency, days))
    return sorted(grid)


def strike_budget(expiries: list[Expiry], now_ms: int, spot: float, instruments: int) -> list[list[float]]:
    """The strikes of each expiry (``expiry_strikes``), trimmed from the wings in
    proportion when the whole chain would exceed ``instruments`` options (calls + puts)."""
    grids = [expiry_strikes(spot, e, now_ms) for e in expiries]
    total = 2 * sum(len(g) for g in grids)
    if total <= instruments:
        return grids
    f = instruments / total
    return [trim_strikes(g, spot, max(1, round(len(g) * f))) for g in grids]


def option_name(currency: str, expiry: Expiry, strike: float, is_call: bool) -> str:
    return f"{currency}-{expiry.code}-{strike_text(strike)}-{'C' if is_call else 'P'}"
