"""The ETH option chain: instruments, expiry schedule, listings (pure).

Expiries are at 08:00 UTC as on Deribit: a few dailies, weeklies (Fridays), monthlies
(last Friday of the month) and quarterlies (last Friday of Mar/Jun/Sep/Dec). Strikes are
spread around spot, wider for longer expiries. Instrument names follow Deribit:
``ETH-6AUG21-2800-C`` (day without zero padding).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from tickarchive.loadtest.sim.config import CURRENCY, INDEX_NAME

DAY_MS = 86_400_000
EXPIRY_HOUR_UTC = 8
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NICE_STEPS = (5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0)
TICK_SIZE = 0.0005
YEAR_MS = 365.0 * DAY_MS


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

    def description(self) -> dict[str, Any]:
        """The ``public/get_instruments`` entry (field names and types as on Deribit)."""
        return {
            "tick_size": TICK_SIZE,
            "tick_size_steps": [],
            "taker_commission": 0.0003,
            "strike": self.strike,
            "settlement_period": self.expiry.period,
            "settlement_currency": CURRENCY,
            "quote_currency": CURRENCY,
            "price_index": INDEX_NAME,
            "option_type": "call" if self.is_call else "put",
            "min_trade_amount": 1,
            "maker_commission": 0.0003,
            "kind": "option",
            "is_active": self.state == "open",
            "instrument_type": "reversed",
            "instrument_name": self.name,
            "instrument_id": self.instrument_id,
            "expiration_timestamp": self.expiry.expiry_ms,
            "creation_timestamp": self.creation_ms,
            "counter_currency": "USD",
            "contract_size": 1.0,
            "block_trade_tick_size": 0.0001,
            "block_trade_min_trade_amount": 25,
            "block_trade_commission": 0.00015,
            "base_currency": CURRENCY,
        }


def _at_expiry_hour(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, EXPIRY_HOUR_UTC, tzinfo=dt.UTC).timestamp() * 1000)


def _last_friday(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - dt.timedelta(days=1)
    return d - dt.timedelta(days=(d.weekday() - 4) % 7)


def expiry_schedule(
    now_ms: int, dailies: int = 4, weeklies: int = 4, monthlies: int = 3, quarterlies: int = 3
) -> list[Expiry]:
    """The expiries listed at ``now_ms``: ``dailies`` next days, ``weeklies`` next Fridays,
    ``monthlies`` next month-ends, ``quarterlies`` next quarter-ends (deduplicated; the
    longest period wins)."""
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
        underlying = f"ETH-{code}" if period == "month" else f"SYN.ETH-{code}"
        out.append(Expiry(ms, period, underlying))
    return out


def strikes_for(spot: float, t_years: float, count: int, vol: float = 0.8) -> list[float]:
    """``count`` strikes on a round step from ``spot*e^-k`` to ``spot*e^k``, with
    ``k = 2 vol sqrt(T)`` (at least 6 %, at most 1.2)."""
    count = max(count, 1)
    k = min(max(2.0 * vol * math.sqrt(max(t_years, 1.0 / 365)), 0.06), 1.2)
    lo, hi = spot * math.exp(-k), spot * math.exp(k)
    raw_step = (hi - lo) / max(count - 1, 1)
    step = min(_NICE_STEPS, key=lambda s: abs(math.log(s / raw_step)))
    first = max(step, round(lo / step) * step)
    centre_shift = round((spot - (first + step * (count - 1) / 2)) / step)
    first = max(step, first + centre_shift * step)
    return [float(first + i * step) for i in range(count)]


def strikes_per_expiry(expiries: list[Expiry], now_ms: int, instruments: int) -> list[int]:
    """Split ``instruments`` (calls + puts) over the expiries, more strikes for longer ones."""
    weights = [max((e.expiry_ms - now_ms) / DAY_MS, 0.1) ** 0.35 for e in expiries]
    total = sum(weights)
    pairs = instruments / 2.0
    return [max(1, round(pairs * w / total)) for w in weights]
