"""How an option is quoted: its parameters, valuation, book targets and book changes (pure).

This is the Python form of what the native engine (``native/src/sim.rs``) does per
option; both follow the same rules (tests/loadtest/test_sim_native.py compares them):

* **Parameters** are drawn once, at listing (``QuoteParams.draw``): the half spread in
  volatility points (lognormal, wider in the wings and for short expiries), the depth
  of each side (0 = an empty side: deep in-the-money asks, far out-of-the-money bids,
  sometimes both), the spacing of the levels and the size scale.
* **Targets**: the best bid/ask are the mark ∓ the half spread converted with the vega
  (never less than 2 % of the intrinsic value plus 0.2 % of the price: deep in-the-money
  options are quoted wide), floored/ceiled onto Deribit's option grid
  (0.0001 up to 0.005, 0.0005 above); the deeper levels follow at the option's spacing.
  A cheap option's bid below 0.0001 is no bid.
* **Book changes** (``book_event``): after a reprice, levels that cross the new best
  target are deleted and the best missing target is added; otherwise one level is
  added, removed or resized. Each change takes the next ids of its currency's counter.
* **IVs**: ``bid_iv``/``ask_iv`` are first order from the mark IV and the vega; a bid at
  or below the intrinsic value has no IV (0.0, as Deribit sends), an ask IV is capped at
  500 (Deribit's cap).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from tickarchive.loadtest.sim import black76, ticks
from tickarchive.loadtest.sim.chain import Instrument
from tickarchive.loadtest.sim.surface import Terms

SIZES = (1.0, 2.0, 5.0, 10.0, 15.0, 25.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0)
"""Level sizes in ETH option contracts; BTC options use a tenth (``size_scale``)."""
MAX_GAPS = 24
_exp = math.exp
_log = math.log
_erf = math.erf
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_new_tuple = tuple.__new__
_Valuation = black76.Valuation
fround = ticks.fround
UNIT_PRICES = ticks.UNIT_PRICES


@dataclass(frozen=True, slots=True)
class QuoteParams:
    """An option's quoting, fixed at listing."""

    half_iv: float
    """Half of the bid/ask spread, in volatility points."""
    depth_bid: int
    depth_ask: int
    """Levels per side (0: the side stays empty)."""
    gaps: tuple[int, ...]
    """Grid steps between consecutive levels (``MAX_GAPS`` of them, cycled)."""
    size_scale: float

    @staticmethod
    def draw(rng: random.Random, currency: str, moneyness: float, days: float, max_levels: int) -> QuoteParams:
        """``moneyness`` = ln(K/S) signed for the option's side: > 0 out of the money."""
        wing = min(abs(moneyness) / (0.25 + 0.02 * days) ** 0.5, 3.0)
        half_iv = _exp(rng.gauss(math.log(0.4), 0.75)) * (1.0 + 0.35 * wing) * (1.0 + 1.5 / (1.0 + days))
        itm = moneyness < -0.1
        otm_far = moneyness > 0.15
        u = rng.random()
        p_both = 0.09 + 0.04 * wing
        p_ask = 0.06 + (0.25 if itm else 0.0)
        p_bid = 0.07 + (0.08 if otm_far else 0.0)
        empty_bid = empty_ask = False
        if u < p_both:
            empty_bid = empty_ask = True
        elif u < p_both + p_ask:
            empty_ask = True
        elif u < p_both + p_ask + p_bid:
            empty_bid = True

        def depth() -> int:
            r = rng.random()
            if r < 0.5:
                n = 1 + int(rng.random() * 4)
            elif r < 0.85:
                n = 5 + int(rng.random() * 5)
            else:
                n = 10 + int(rng.random() * 3)
            return max(1, min(max_levels, n))

        gaps = tuple(1 + int(rng.random() * rng.random() * 4) for _ in range(MAX_GAPS))
        scale = (0.1 if currency == "BTC" else 1.0) * (0.5 + rng.random())
        return QuoteParams(half_iv, 0 if empty_bid else depth(), 0 if empty_ask else depth(), gaps, scale)


def level_size(rng_value: float, scale: float) -> float:
    """A level's size from a uniform draw: one of ``SIZES`` times the option's scale,
    to 0.1 contract."""
    return max(0.1, fround(SIZES[int(rng_value * len(SIZES))] * scale, 10.0, 1))


class OptionState:
    """The mutable market state of one listed option."""

    __slots__ = (
        "asks",
        "bids",
        "book_ts_ms",
        "change_id",
        "cur",
        "delivery_price",
        "expired",
        "forward",
        "high",
        "inst",
        "last_book_step",
        "last_price",
        "last_tick_direction",
        "last_ticker_step",
        "low",
        "mark_iv",
        "nid",
        "open_interest",
        "open_price",
        "p_book",
        "p_ticker",
        "params",
        "pb_book",
        "pb_ticker",
        "settlement_price",
        "targets",
        "targets_version",
        "tbody",
        "tbody_key",
        "ticker_event",
        "top",
        "trade_seq",
        "val",
        "val_version",
        "volume",
    )

    def __init__(self, inst: Instrument, cur: int, params: QuoteParams) -> None:
        self.inst = inst
        self.cur = cur
        """Index of the option's currency in the model (its change-id counter)."""
        self.params = params
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = 0
        self.book_ts_ms = 0
        self.trade_seq = 0
        self.last_price: float | None = None
        self.last_tick_direction = 0
        self.open_interest = 0.0
        self.volume = 0.0
        """24 h volume; 0 means no trade in 24 h: the ticker's stats are null."""
        self.low = 0.0
        self.high = 0.0
        self.open_price = 0.0
        """The price 24 h ago, the base of stats.price_change."""
        self.settlement_price: float | None = None
        """The last 08:00 settlement mark; None for an option listed since (absent on the wire)."""
        self.val = black76.Valuation(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        self.mark_iv = 0.0
        self.forward = 0.0
        self.val_version = -1
        self.last_ticker_step = -(10**9)
        self.last_book_step = -(10**9)
        self.p_ticker = self.p_book = self.pb_ticker = self.pb_book = 0.0
        """Per-step emission probabilities (normal and during bursts)."""
        self.targets: tuple[list[float], list[float]] = ([], [])
        self.targets_version = -1
        self.top: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        """Best bid price, amount, best ask price, amount (0.0 for an empty side); kept
        current by the model after every book change (``update_top``)."""
        self.tbody = b""
        self.tbody_key: tuple[Any, ...] | None = None
        self.expired = False
        self.delivery_price = 0.0
        self.ticker_event: Any = None
        self.nid = -1
        """The option's id in the native engine (``MarketModel.native``), -1 if none."""

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


def reprice(st: OptionState, terms: Terms, version: int) -> None:
    """Black-76 value and greeks of ``st`` under ``terms`` (the same operations as the
    native engine and as ``black76.black76`` at rate 0)."""
    inst = st.inst
    strike = inst.strike
    forward = terms.forward
    sqrt_t = terms.sqrt_t
    t = terms.t_years
    x = _log(strike / forward) / sqrt_t
    x = max(-4.0, min(4.0, x))
    vol = max(0.15, min(3.0, terms.atm + terms.skew * x + terms.curv * x * x))
    sig_sqrt_t = vol * sqrt_t
    d1 = (_log(forward / strike) + 0.5 * sig_sqrt_t * sig_sqrt_t) / sig_sqrt_t
    d2 = d1 - sig_sqrt_t
    pdf = _INV_SQRT_2PI * _exp(-0.5 * d1 * d1)
    if inst.is_call:
        nd1 = 0.5 * (1.0 + _erf(d1 / _SQRT2))
        nd2 = 0.5 * (1.0 + _erf(d2 / _SQRT2))
        usd = forward * nd1 - strike * nd2
        delta = nd1
        rho = strike * t * nd2 / 100.0
    else:
        nd1 = 0.5 * (1.0 + _erf(-d1 / _SQRT2))
        nd2 = 0.5 * (1.0 + _erf(-d2 / _SQRT2))
        usd = strike * nd2 - forward * nd1
        delta = -nd1
        rho = -strike * t * nd2 / 100.0
    st.val = _new_tuple(
        _Valuation,
        (
            max(usd, 0.0) / forward,
            delta,
            pdf / (forward * sig_sqrt_t),
            forward * pdf * sqrt_t / 100.0,
            -forward * pdf * vol / (2.0 * sqrt_t) / 365.0,
            rho,
        ),
    )
    st.mark_iv = fround(vol * 100.0, 100.0, 2)
    st.forward = terms.forward_2
    st.val_version = version


def intrinsic(st: OptionState) -> float:
    """Intrinsic value in coin at the underlying price the ticker shows."""
    f = st.forward
    if f <= 0.0:
        return 0.0
    k = st.inst.strike
    return max(f - k, 0.0) / f if st.inst.is_call else max(k - f, 0.0) / f


def iv_of(st: OptionState, price: float, is_bid: bool) -> float:
    """First-order implied vol (percent) of a quote at ``price``; 0.0 for a bid at or below
    the intrinsic value, at most 500.0."""
    if is_bid and price <= intrinsic(st):
        return 0.0
    vega_coin = st.val.vega / st.forward if st.forward else 0.0
    if vega_coin <= 1e-12:
        return 0.0 if is_bid else 500.0
    iv = st.mark_iv + (price - st.val.price_coin) / vega_coin
    return fround(max(0.0, min(500.0, iv)), 100.0, 2)


def targets(st: OptionState) -> tuple[list[float], list[float]]:
    """The prices the book's levels sit at (best first) for the current valuation."""
    p = st.params
    mark = st.val.price_coin
    vega_coin = st.val.vega / st.forward if st.forward else 0.0
    half = max(p.half_iv * vega_coin, 0.02 * intrinsic(st) + 0.002 * mark)
    nb = ticks.valid_down(ticks.units_floor(mark - half))
    na = ticks.valid_up(ticks.units_ceil(mark + half))
    if na <= nb:
        na = ticks.next_up(nb)
    if na < 1:
        na = 1
    gaps = p.gaps
    bids: list[float] = []
    n = nb
    for i in range(p.depth_bid):
        if n < 1:
            break
        bids.append(ticks.unit_price(n))
        for _ in range(gaps[i % MAX_GAPS]):
            n = ticks.next_down(n)
    asks: list[float] = []
    n = na
    for i in range(p.depth_ask):
        asks.append(ticks.unit_price(n))
        for _ in range(gaps[i % MAX_GAPS]):
            n = ticks.next_up(n)
    return bids, asks


def seed_book(st: OptionState, rng: random.Random, version: int) -> None:
    """Fill the book at its targets (a fresh listing)."""
    bids, asks = targets(st)
    scale = st.params.size_scale
    for p in bids:
        st.bids[p] = level_size(rng.random(), scale)
    for p in asks:
        st.asks[p] = level_size(rng.random(), scale)
    st.targets = (bids, asks)
    st.targets_version = version
    st.update_top()


def realign(book: dict[float, float], targets_: list[float], is_bid: bool, size: float) -> list[list[Any]]:
    """After the fair value moved: delete levels that now cross the best target, then add
    the best missing target level."""
    actions: list[list[Any]] = []
    limit = targets_[0] if targets_ else None
    for p in [p for p in book if limit is None or (p > limit if is_bid else p < limit)]:
        del book[p]
        actions.append(["delete", p, 0.0])
    if actions:
        for p in targets_:
            if p not in book:
                book[p] = size
                actions.append(["new", p, size])
                break
    return actions


def book_actions(
    st: Any, fresh: tuple[list[float], list[float]] | None, rand: Any, scale: float
) -> tuple[list[list[Any]], list[list[Any]]]:
    """The level changes of one book event (``st`` has ``bids``, ``asks``, ``targets``,
    ``top``): a realignment when ``fresh`` targets differ, else one random action.
    Keeps ``st.top`` current."""
    bids: list[list[Any]] = []
    asks: list[list[Any]] = []
    if fresh is not None and fresh != st.targets:
        st.targets = fresh
        bids = realign(st.bids, fresh[0], True, level_size(rand(), scale))
        asks = realign(st.asks, fresh[1], False, level_size(rand(), scale))
    if bids or asks:
        st.update_top()
        return bids, asks
    is_bid = rand() < 0.5
    book = st.bids if is_bid else st.asks
    tgt = st.targets[0] if is_bid else st.targets[1]
    if not tgt:  # an empty side: the other one moves, if it has levels
        is_bid = not is_bid
        book = st.bids if is_bid else st.asks
        tgt = st.targets[0] if is_bid else st.targets[1]
    actions = bids if is_bid else asks
    r = rand()
    amount = level_size(rand(), scale)
    top = st.top
    best = top[0] if is_bid else top[2]
    if (not book or r < 0.15) and len(book) < len(tgt):
        for p in tgt:
            if p not in book:
                if not book or (p > best if is_bid else p < best):
                    top = (p, amount, top[2], top[3]) if is_bid else (top[0], top[1], p, amount)
                book[p] = amount
                actions.append(["new", p, amount])
                break
    elif r < 0.3 and len(book) > 1:
        p = min(book) if is_bid else max(book)  # the worst level: never the top
        del book[p]
        actions.append(["delete", p, 0.0])
    elif book:
        p = tgt[int(r * 3) % len(tgt)] if tgt else 0.0
        if p not in book:
            p = next(iter(book))
        if amount == book[p]:
            amount = fround(amount + scale, 10.0, 1)
        book[p] = amount
        if p == best:
            top = (p, amount, top[2], top[3]) if is_bid else (top[0], top[1], p, amount)
        actions.append(["change", p, amount])
    st.top = top
    return bids, asks
