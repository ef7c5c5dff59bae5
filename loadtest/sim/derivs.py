"""Futures, the perpetual and option combos: their state, prices and books (pure).

* **Perpetual** (``BTC-PERPETUAL``): the index plus a small premium that mean-reverts;
  ``funding_8h`` follows the premium, ``current_funding`` is 0.0 as in every mainnet
  sample, ``interest_value`` accumulates. Tick 0.5 (BTC) / 0.05 (ETH), amounts in USD
  (BTC contracts of 10 USD), books 12 levels deep, 1 tick wide most of the time.
* **Dated futures** (``ETH-27JUN25``): the forward of the currency's surface
  (``CurrencyMarket.forward``), tick 2.5 / 0.25, same books.
* **Option combos** (straddle ``STRD``, strangle ``STRG``, call spread ``CS``, put spread
  ``PS``, 1×2 call ratio ``CSR12``): legs are listed options; mark, greeks and the
  implied bid/ask come from the legs (``implied_bid`` sells the bought legs at their
  bid and buys the sold ones at their ask), the mark IV is the legs' vega-weighted IV
  (negative for a ratio, as Deribit sends it), the combo's own book is thin (0–2
  levels a side on the flat 0.0001 grid), ``combo_state`` is ``active``.
"""

from __future__ import annotations

import math
import random
from typing import Any

from tickarchive.loadtest.sim import ticks
from tickarchive.loadtest.sim.chain import Instrument
from tickarchive.loadtest.sim.quoting import MAX_GAPS, OptionState
from tickarchive.loadtest.sim.surface import CurrencyMarket

FUTURE_DEPTH = 12
fround = ticks.fround


class _Book:
    """Book and trade state shared by futures and combos (``quoting.book_actions`` works on it)."""

    __slots__ = (
        "asks",
        "bids",
        "book_ts_ms",
        "change_id",
        "cur",
        "high",
        "inst",
        "last_book_step",
        "last_price",
        "last_tick_direction",
        "last_ticker_step",
        "low",
        "mark",
        "open_interest",
        "open_price",
        "p_book",
        "p_ticker",
        "pb_book",
        "pb_ticker",
        "settlement_price",
        "targets",
        "targets_version",
        "ticker_event",
        "top",
        "trade_seq",
        "volume",
    )

    def __init__(self, inst: Instrument, cur: int) -> None:
        self.inst = inst
        self.cur = cur
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.targets: tuple[list[float], list[float]] = ([], [])
        self.targets_version = -1
        self.top: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self.change_id = 0
        self.book_ts_ms = 0
        self.trade_seq = 0
        self.last_price: float | None = None
        self.last_tick_direction = 0
        self.volume = 0.0
        self.low = 0.0
        self.high = 0.0
        self.open_price = 0.0
        self.open_interest = 0.0
        self.settlement_price: float | None = None
        self.mark = 0.0
        self.last_ticker_step = -(10**9)
        self.last_book_step = -(10**9)
        self.p_ticker = self.p_book = self.pb_ticker = self.pb_book = 0.0
        self.ticker_event: Any = None

    def update_top(self) -> None:
        bids = self.bids
        asks = self.asks
        bid = max(bids) if bids else 0.0
        ask = min(asks) if asks else 0.0
        self.top = (bid, bids[bid] if bids else 0.0, ask, asks[ask] if asks else 0.0)

    def best_bid(self) -> tuple[float, float] | None:
        return (self.top[0], self.top[1]) if self.bids else None

    def best_ask(self) -> tuple[float, float] | None:
        return (self.top[2], self.top[3]) if self.asks else None


class FutureState(_Book):
    """A dated future or the perpetual."""

    __slots__ = ("contract_size", "funding_8h", "gaps", "interest_value", "premium", "tick")

    def __init__(self, inst: Instrument, cur: int, rng: random.Random) -> None:
        super().__init__(inst, cur)
        self.tick = ticks.FUTURE_TICKS[(inst.currency, inst.perpetual)]
        self.contract_size = 10.0 if inst.currency == "BTC" else 1.0
        self.premium = rng.gauss(0.0, 0.0004)
        self.funding_8h = 0.0
        self.interest_value = rng.uniform(0.0005, 0.03) if inst.perpetual else 0.0
        self.gaps = tuple(1 + int(rng.random() * rng.random() * 4) for _ in range(MAX_GAPS))

    @property
    def size_scale(self) -> float:
        return self.contract_size * 20.0

    def reprice(self, market: CurrencyMarket, t_years: float, rng: random.Random, dt_years: float) -> None:
        if self.inst.perpetual:
            self.premium += -50.0 * self.premium * dt_years + 0.0004 * math.sqrt(100.0 * dt_years) * rng.gauss(0, 1)
            self.mark = market.spot * (1.0 + self.premium)
            self.funding_8h = fround(max(-0.005, min(0.005, self.premium / 3.0)), 1e8, 8)
            self.interest_value += abs(self.premium) * dt_years
        else:
            self.mark = market.forward(t_years)

    def target_levels(self) -> tuple[list[float], list[float]]:
        tick = self.tick
        half = tick * 0.6
        bid = ticks.grid_round(self.mark - half, tick, up=False)
        ask = ticks.grid_round(self.mark + half, tick, up=True)
        if ask <= bid:
            ask = round(bid + tick, 4)
        gaps = self.gaps
        bids = [bid]
        asks = [ask]
        for i in range(FUTURE_DEPTH - 1):
            bids.append(round(bids[-1] - gaps[i] * tick, 4))
            asks.append(round(asks[-1] + gaps[i] * tick, 4))
        return bids, asks


COMBO_STYLES = ("STRD", "CS", "PS", "STRG", "CSR12")


class ComboState(_Book):
    """An option combo over listed options."""

    __slots__ = ("depth_ask", "depth_bid", "gaps", "greeks", "legs", "mark_iv")

    def __init__(self, inst: Instrument, cur: int, legs: list[tuple[OptionState, float]], rng: random.Random) -> None:
        super().__init__(inst, cur)
        self.legs = legs
        self.depth_bid = int(rng.random() * 3)
        self.depth_ask = int(rng.random() * 3)
        self.gaps = tuple(1 + int(rng.random() * 3) for _ in range(MAX_GAPS))
        self.mark_iv = 0.0
        self.greeks = (0.0, 0.0, 0.0, 0.0, 0.0)
        """delta, gamma, vega, theta, rho."""

    @property
    def size_scale(self) -> float:
        return 0.1 if self.inst.currency == "BTC" else 1.0

    def reprice(self) -> None:
        """Mark, greeks and IV from the legs (already priced)."""
        mark = 0.0
        g = [0.0] * 5
        iv_vega = 0.0
        vega = 0.0
        for leg, r in self.legs:
            v = leg.val
            mark += r * v.price_coin
            for i, x in enumerate((v.delta, v.gamma, v.vega, v.theta, v.rho)):
                g[i] += r * x
            iv_vega += r * leg.mark_iv * v.vega
            vega += r * v.vega
        self.mark = mark
        self.greeks = (g[0], g[1], g[2], g[3], g[4])
        self.mark_iv = fround(iv_vega / vega, 100.0, 2) if abs(vega) > 1e-9 else 0.0

    def implied(self) -> tuple[float | None, float | None]:
        """The bid and ask the legs' books imply (None when a leg lacks the side needed:
        the ticker then shows 0.0, as for an empty side)."""
        bid = ask = 0.0
        bid_ok = ask_ok = True
        for leg, r in self.legs:
            b, a = leg.best_bid(), leg.best_ask()
            if r > 0:
                bid_ok &= b is not None
                ask_ok &= a is not None
                bid += r * (b[0] if b else 0.0)
                ask += r * (a[0] if a else 0.0)
            else:
                bid_ok &= a is not None
                ask_ok &= b is not None
                bid += r * (a[0] if a else 0.0)
                ask += r * (b[0] if b else 0.0)
        return (fround(bid, 1e4, 4) if bid_ok else None, fround(ask, 1e4, 4) if ask_ok else None)

    def target_levels(self) -> tuple[list[float], list[float]]:
        mark = self.mark
        half = max(abs(mark) * 0.03, 0.0002)
        nb = math.floor((mark - half) / ticks.UNIT + 1e-9)
        na = math.ceil((mark + half) / ticks.UNIT - 1e-9)
        if na <= nb:
            na = nb + 1
        bids = [round(n * ticks.UNIT, 4) for n in _ladder(nb, -1, self.depth_bid, self.gaps)]
        asks = [round(n * ticks.UNIT, 4) for n in _ladder(na, 1, self.depth_ask, self.gaps)]
        return bids, asks


def _ladder(n: int, direction: int, depth: int, gaps: tuple[int, ...]) -> list[int]:
    out = []
    for i in range(depth):
        out.append(n)
        n += direction * gaps[i % MAX_GAPS]
    return out


def combo_name(currency: str, style: str, code: str, strikes: list[float]) -> str:
    from tickarchive.loadtest.sim.chain import strike_text

    return f"{currency}-{style}-{code}-{'_'.join(strike_text(k) for k in strikes)}"


def combo_legs(style: str, calls: dict[float, OptionState], puts: dict[float, OptionState], k1: float, k2: float
               ) -> list[tuple[OptionState, float]]:
    """The legs of a combo ``style`` over strikes ``k1 < k2`` (``k2`` unused by straddles)."""
    if style == "STRD":
        return [(calls[k1], 1.0), (puts[k1], 1.0)]
    if style == "STRG":
        return [(puts[k1], 1.0), (calls[k2], 1.0)]
    if style == "CS":
        return [(calls[k1], 1.0), (calls[k2], -1.0)]
    if style == "PS":
        return [(puts[k2], 1.0), (puts[k1], -1.0)]
    return [(calls[k1], 1.0), (calls[k2], -2.0)]  # CSR12
