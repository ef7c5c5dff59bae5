"""The market model: index random walk, option values, books, trades, listings (pure).

``MarketModel.step(now_ms)`` advances one generator step (``tick_ms`` of wall time,
``tick_ms * time_scale`` of simulated time) and returns the events of that step. It
never looks at subscriptions or sockets, and every random draw comes from one
``random.Random(seed)``: the same seed and config give the same event sequence, whatever
the wall clock says (wall time only appears as the ``now_ms`` timestamp).

Per channel, each instrument emits at most one ticker and one book message per step and
at most once per ``effective_min_interval_ms``; the caller gives every step its own,
strictly increasing millisecond, so timestamps are strictly increasing per instrument and
channel.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tickarchive.loadtest.sim import black76
from tickarchive.loadtest.sim import native as _native
from tickarchive.loadtest.sim.chain import (
    DAY_MS,
    TICK_SIZE,
    YEAR_MS,
    Expiry,
    Instrument,
    expiry_schedule,
    strikes_for,
    strikes_per_expiry,
)
from tickarchive.loadtest.sim.config import SimConfig

REPRICE_MS = 100
"""The index moves (and options reprice) every 100 ms of wall time."""
TRADE_WINDOW_MS = 100
"""Trades are published in 100 ms batches, as the ``.100ms`` trade channels do."""
_AMOUNTS = (1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 10.0, 10.0, 20.0, 25.0, 50.0, 100.0, 250.0)
_BOOK_SIZES = (1.0, 2.0, 5.0, 10.0, 15.0, 25.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0)


class OptionState:
    """The mutable market state of one listed option."""

    __slots__ = (
        "ask_iv",
        "ask_iv_key",
        "asks",
        "bid_iv",
        "bid_iv_key",
        "bids",
        "book_ts_ms",
        "change_id",
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
        "pb_book",
        "pb_ticker",
        "stats",
        "stats_json",
        "stats_key",
        "targets",
        "targets_version",
        "tbody",
        "tbody_seq",
        "tbody_top",
        "tbody_version",
        "tcache",
        "tcache_version",
        "tframe",
        "thead",
        "ticker_event",
        "top",
        "trade_seq",
        "tstatic_key",
        "tstatic_tpl",
        "val",
        "val_version",
        "volume",
    )

    def __init__(self, inst: Instrument, change_id: int, open_interest: float, volume: float) -> None:
        self.inst = inst
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = change_id
        self.book_ts_ms = 0
        self.trade_seq = 0
        self.last_price: float | None = None
        self.last_tick_direction = 0
        self.open_interest = open_interest
        self.volume = volume
        self.low = 0.0
        self.high = 0.0
        self.open_price = 0.0
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
        self.tcache: bytes | None = None
        """The ticker fields that only change on a reprice (see ``encode.ticker_data``)."""
        self.tcache_version = -1
        self.bid_iv = self.ask_iv = 0.0
        self.bid_iv_key: tuple[float, int] = (-1.0, -1)
        self.ask_iv_key: tuple[float, int] = (-1.0, -1)
        self.stats: dict[str, float] = {}
        self.stats_key: tuple[int, int] = (-1, -1)
        self.top: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        """Best bid price, amount, best ask price, amount (0.0 for an empty side); kept
        current by the model after every book change (``update_top``)."""
        self.tbody: bytes = b""
        """The ticker's ``data`` up to ``"timestamp":`` (see ``encode.ticker_body``)."""
        self.tbody_version = -1
        self.tbody_seq = -1
        self.tbody_top: tuple[float, float, float, float] | None = None
        """What ``tbody`` was built from: spot version, trade_seq, top of the book."""
        self.tstatic_key: tuple[str, float] | None = None
        self.tstatic_tpl = b""
        """The ticker's reprice-time template (``encode._static_template``), per state."""
        self.stats_json = b""
        self.thead = b""
        self.tframe: bytes = b""
        """The ``ticker.{name}.100ms`` notification up to the timestamp (for ``tbody``)."""
        self.ticker_event = TickerEvent(self)
        """This option's ticker event (immutable, so built once)."""
        self.nid = -1
        """The option's id in the native engine (``MarketModel.native``), -1 if none."""

    def update_top(self) -> None:
        bids = self.bids
        asks = self.asks
        bid = max(bids) if bids else 0.0
        ask = min(asks) if asks else 0.0
        self.top = (bid, bids[bid] if bids else 0.0, ask, asks[ask] if asks else 0.0)

    def best_bid(self) -> tuple[float, float] | None:
        if not self.bids:
            return None
        return self.top[0], self.top[1]

    def best_ask(self) -> tuple[float, float] | None:
        if not self.asks:
            return None
        return self.top[2], self.top[3]


class TickerEvent(NamedTuple):
    state: OptionState


class BookEvent(NamedTuple):
    state: OptionState
    change_id: int
    prev_change_id: int
    bids: list[list[Any]]
    asks: list[list[Any]]


class TradesEvent(NamedTuple):
    trades: list[dict[str, Any]]
    """Trades of the last 100 ms window, each the exact wire/history object."""


class IndexEvent(NamedTuple):
    price: float


class StateEvent(NamedTuple):
    instrument: str
    state: str


Event = TickerEvent | BookEvent | TradesEvent | IndexEvent | StateEvent


@dataclass(slots=True)
class _Pending:
    due_sim_ms: int
    names: list[str] = field(default_factory=list)


_exp = math.exp
_log = math.log
_sqrt = math.sqrt
_erf = math.erf
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MIN_T = black76.MIN_T_YEARS
_Valuation = black76.Valuation
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


_new_tuple = tuple.__new__

_TICK_PRICES = [round(n * TICK_SIZE, 4) for n in range(40_001)]


def _tick_price(n: int) -> float:
    """The price of ``n`` ticks, as the float Deribit would print (0.0005 steps)."""
    return _TICK_PRICES[n] if n < len(_TICK_PRICES) else round(n * TICK_SIZE, 4)


def _round_tick(price: float, up: bool) -> float:
    ticks = price / TICK_SIZE
    n = math.ceil(ticks - 1e-9) if up else math.floor(ticks + 1e-9)
    return round(n * TICK_SIZE, 4)


class MarketModel:
    """The whole simulated market. Not thread-safe; owned by the simulator's generator."""

    def __init__(self, config: SimConfig, wall_start_ms: int, native: bool = False) -> None:
        self.config = config
        self.native: Any = None
        """With ``native``: the ``tickarchive_native.SimEngine`` that owns the options'
        books and emission state once listed (see ``step_native``), else None."""
        if native:
            self.native = _native.new_engine(config, _TICK_PRICES)
        self.rng = random.Random(config.seed)
        self.start_sim_ms = config.start_ms if config.start_ms is not None else wall_start_ms
        if config.past_days_ms and config.start_ms is None:
            self.start_sim_ms = config.past_days_ms[0]  # the chain of the first past day
        self.sim_ms = self.start_sim_ms
        self.step_no = 0
        self.now_ms = 0
        self.spot = config.spot_usd
        self.index_price = round(self.spot, 2)
        self.base_vol = config.annual_vol
        self.spot_version = 0
        self.tick_s = config.tick_ms / 1000.0
        self.min_steps = max(1, config.effective_min_interval_ms // config.tick_ms)
        self.reprice_steps = max(1, REPRICE_MS // config.tick_ms)
        self.trade_window_steps = max(1, TRADE_WINDOW_MS // config.tick_ms)
        self.index_steps = max(1, config.index_interval_ms // config.tick_ms)
        self.next_instrument_id = 200_000 + self.rng.randrange(50_000)
        self.next_trade_id = 300_000_000 + self.rng.randrange(10_000_000)
        self.states: dict[str, OptionState] = {}
        self.expiries: dict[int, Expiry] = {}
        self.active: list[OptionState] = []
        self._cum: list[float] = []
        self._rows: list[tuple[OptionState, float, float]] = []
        self._burst_rows: list[tuple[OptionState, float, float]] = []
        """``active`` with each option's ticker and book emission probabilities per step
        (normal, during bursts), rebuilt with them."""
        self._trade_carry = 0.0
        self._pending_trades: list[dict[str, Any]] = []
        self._deliveries: list[_Pending] = []
        self._expiry_terms: dict[int, tuple[int, int, float, float, float, float, float]] = {}
        """Expiry -> (sim_ms, spot_version, t_years, forward, atm vol, sqrt(t), rounded forward)."""
        self.locked = False
        """Platform maintenance: no market data is generated while True."""
        self._list_expiries(initial=True)

    # ---- catalogue -------------------------------------------------------------

    def _list_expiries(self, initial: bool) -> list[str]:
        """List every scheduled expiry not listed yet; returns the new instrument names."""
        schedule = expiry_schedule(self.sim_ms)
        counts = strikes_per_expiry(schedule, self.sim_ms, self.config.instruments)
        new_names: list[str] = []
        for expiry, count in zip(schedule, counts, strict=True):
            if expiry.expiry_ms in self.expiries:
                continue
            self.expiries[expiry.expiry_ms] = expiry
            t_years = (expiry.expiry_ms - self.sim_ms) / YEAR_MS
            creation = self.sim_ms - (self.rng.randrange(1, 60) * DAY_MS if initial else 0)
            for strike in strikes_for(self.spot, t_years, count):
                for is_call in (True, False):
                    code = expiry.code
                    name = f"ETH-{code}-{int(strike)}-{'C' if is_call else 'P'}"
                    inst = Instrument(name, self.next_instrument_id, strike, is_call, expiry, creation)
                    self.next_instrument_id += 1
                    st = OptionState(
                        inst,
                        change_id=10_000_000_000 + self.rng.randrange(10**9),
                        open_interest=float(self.rng.randrange(0, 20_000)),
                        volume=float(self.rng.randrange(0, 2_000)),
                    )
                    self.states[name] = st
                    new_names.append(name)
                    self._reprice(st)
                    st.open_price = st.val.price_coin
                    st.low = st.high = _round_tick(st.val.price_coin, up=False) or TICK_SIZE
                    st.last_price = st.low
                    self._seed_book(st)
        self._rebuild_weights()
        return new_names

    def _rebuild_weights(self) -> None:
        self.active = [st for st in self.states.values() if st.inst.state == "open"]
        self.active.sort(key=lambda st: (st.inst.expiry_ms, st.inst.strike, not st.inst.is_call))
        cum = 0.0
        self._cum = []
        for st in self.active:
            t_years = max((st.inst.expiry_ms - self.sim_ms) / YEAR_MS, 1.0 / 365)
            moneyness = abs(math.log(st.inst.strike / self.spot)) / (0.8 * math.sqrt(t_years))
            weight = math.exp(-0.5 * moneyness * moneyness) + 0.15
            weight *= (1.0 / (t_years * 365.0 + 1.0)) ** 0.3
            st.inst.weight = weight
            cum += weight
            self._cum.append(cum)
        self._rebuild_probs()

    def _rebuild_probs(self) -> None:
        """Per-step emission probabilities: the rate split by activity weight, capped by
        the per-channel minimum interval (water-filling), compensated for the dead time
        after each emission."""
        cfg = self.config
        m = self.min_steps
        cap = 1.0 / m
        dead = m - 1
        by_weight = sorted(self.active, key=lambda st: -st.inst.weight)
        burst = cfg.burst_multiplier if cfg.burst_every_s > 0 else 1.0
        for factor, is_burst in ((1.0, False), (burst, True)):
            for share, is_ticker in ((cfg.ticker_share, True), (1.0 - cfg.ticker_share, False)):
                target = cfg.rate_per_s * factor * share * self.tick_s
                weight_left = sum(st.inst.weight for st in by_weight)
                for st in by_weight:
                    r = target * st.inst.weight / weight_left if weight_left > 0 else 0.0
                    r = min(r, cap)
                    target -= r
                    weight_left -= st.inst.weight
                    p = 1.0 if r >= cap else r / (1.0 - r * dead)
                    if is_burst:
                        if is_ticker:
                            st.pb_ticker = p
                        else:
                            st.pb_book = p
                    elif is_ticker:
                        st.p_ticker = p
                    else:
                        st.p_book = p
        self._rows = [(st, st.p_ticker, st.p_book) for st in self.active]
        self._burst_rows = [(st, st.pb_ticker, st.pb_book) for st in self.active]
        if self.native is not None:
            for st in self.active:
                if st.nid < 0:
                    st.nid = _native.register(self.native, st)
            self.native.set_rows(
                [(st.nid, st.p_ticker, st.p_book) for st in self.active],
                [(st.nid, st.pb_ticker, st.pb_book) for st in self.active],
            )

    def listed(self) -> list[Instrument]:
        """Instruments currently listed (open), in chain order."""
        return [st.inst for st in self.active]

    # ---- pricing ---------------------------------------------------------------

    def _reprice(self, st: OptionState) -> None:
        """Black-76 value and greeks at the current spot and simulated time.

        The same arithmetic as ``black76.atm_term_vol``, ``smile_vol`` and ``black76``
        (operation for operation, so the floats are bit-identical), with the per-expiry
        terms (time, forward, ATM vol, square roots) computed once per step and expiry
        and the zero-rate discount factor (exactly 1.0) left out."""
        inst = st.inst
        expiry_ms = inst.expiry_ms
        terms = self._expiry_terms.get(expiry_ms)
        if terms is None or terms[0] != self.sim_ms or terms[1] != self.spot_version:
            t_years = max((expiry_ms - self.sim_ms) / YEAR_MS, _MIN_T)
            forward = self.spot * _exp(0.02 * t_years)
            atm = self.base_vol * (1.0 + 0.25 * _exp(-t_years * 24.0))
            sqrt_t = _sqrt(max(t_years, _MIN_T))
            terms = (self.sim_ms, self.spot_version, t_years, forward, atm, sqrt_t, round(forward, 2))
            self._expiry_terms[expiry_ms] = terms
        _sim, _ver, t, forward, atm, sqrt_t, forward_2 = terms
        strike = inst.strike
        # smile_vol(atm, forward, strike, t, skew=-0.04, curvature=0.025)
        k = _log(strike / forward) / sqrt_t
        k = max(-4.0, min(4.0, k))
        vol = max(0.15, min(3.0, atm + -0.04 * k + 0.025 * k * k))
        # black76(forward, strike, t, vol, is_call) at rate 0 (t >= MIN_T_YEARS already)
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
        st.val = _new_tuple(  # = black76.Valuation(...), without the Python-level __new__
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
        st.forward = forward_2
        st.val_version = self.spot_version

    def ensure_priced(self, st: OptionState) -> None:
        if st.val_version != self.spot_version:
            self._reprice(st)

    def iv_of(self, st: OptionState, price: float) -> float:
        """First-order implied vol (percent) of ``price``, from the mark and the vega."""
        vega_coin = st.val.vega / st.forward if st.forward else 0.0
        if vega_coin <= 1e-12:
            return st.mark_iv
        return fround(max(0.0, st.mark_iv + (price - st.val.price_coin) / vega_coin), 100.0, 2)

    # ---- books -----------------------------------------------------------------

    def _targets(self, st: OptionState) -> tuple[list[float], list[float]]:
        mark = st.val.price_coin
        half = max(mark * 0.04, TICK_SIZE)
        n_bid = math.floor((mark - half) / TICK_SIZE + 1e-9)
        n_ask = max(math.ceil((mark + half) / TICK_SIZE - 1e-9), 1)
        if n_ask <= n_bid:
            n_ask = n_bid + 1
        levels = self.config.book_levels
        if n_ask + 2 * levels < len(_TICK_PRICES):  # every level in the table: slice it
            # every other tick from the best level outwards; bids stop before price 0
            bids = _TICK_PRICES[n_bid : max(n_bid - 2 * levels, 0) : -2] if n_bid > 0 else []
            return bids, _TICK_PRICES[n_ask : n_ask + 2 * levels : 2]
        bids = [_tick_price(n_bid - 2 * i) for i in range(levels) if n_bid - 2 * i > 0]
        asks = [_tick_price(n_ask + 2 * i) for i in range(levels)]
        return bids, asks

    def _seed_book(self, st: OptionState) -> None:
        bids, asks = self._targets(st)
        rng = self.rng
        for p in bids:
            st.bids[p] = rng.choice(_BOOK_SIZES)
        for p in asks:
            st.asks[p] = rng.choice(_BOOK_SIZES)
        st.targets = (bids, asks)
        st.targets_version = self.spot_version
        st.book_ts_ms = self.now_ms
        st.update_top()

    @staticmethod
    def _realign(book: dict[float, float], targets: list[float], is_bid: bool, size: float) -> list[list[Any]]:
        """After the fair value moved: delete levels that now cross it, add the best
        missing target level."""
        actions: list[list[Any]] = []
        limit = targets[0] if targets else None
        for p in [p for p in book if limit is None or (p > limit if is_bid else p < limit)]:
            del book[p]
            actions.append(["delete", p, 0.0])
        if actions:
            for p in targets:
                if p not in book:
                    book[p] = size
                    actions.append(["new", p, size])
                    break
        return actions

    def _book_event(self, st: OptionState) -> BookEvent | None:
        rand = self.rng.random
        sizes = _BOOK_SIZES
        bids: list[list[Any]] = []
        asks: list[list[Any]] = []
        if st.targets_version != self.spot_version:
            fresh = self._targets(st)
            st.targets_version = self.spot_version
            if fresh != st.targets:
                st.targets = fresh
                bids = self._realign(st.bids, fresh[0], True, sizes[int(rand() * len(sizes))])
                asks = self._realign(st.asks, fresh[1], False, sizes[int(rand() * len(sizes))])
        if bids or asks:
            st.update_top()
        else:
            # One action on one side; the top of the book is kept incrementally.
            is_bid = rand() < 0.5
            book = st.bids if is_bid else st.asks
            targets = st.targets[0] if is_bid else st.targets[1]
            actions = bids if is_bid else asks
            r = rand()
            amount = sizes[int(rand() * len(sizes))]
            top = st.top
            best = top[0] if is_bid else top[2]
            if (not book or r < 0.15) and len(book) < len(targets):
                for p in targets:
                    if p not in book:
                        if not book or (p > best if is_bid else p < best):
                            best = p
                            top = (p, amount, top[2], top[3]) if is_bid else (top[0], top[1], p, amount)
                        book[p] = amount
                        actions.append(["new", p, amount])
                        break
            elif r < 0.25 and len(book) > 2:
                p = min(book) if is_bid else max(book)  # the worst level: never the top
                del book[p]
                actions.append(["delete", p, 0.0])
            elif book:
                p = targets[int(r * 3) % len(targets)] if targets else 0.0
                if p not in book:
                    p = next(iter(book))
                if amount == book[p]:
                    amount += 1.0
                book[p] = amount
                if p == best:
                    top = (p, amount, top[2], top[3]) if is_bid else (top[0], top[1], p, amount)
                actions.append(["change", p, amount])
            if not actions:
                return None
            st.top = top
        prev = st.change_id
        st.change_id = prev + 1 + int(rand() * rand() * 400)
        st.book_ts_ms = self.now_ms
        return _new_tuple(BookEvent, (st, st.change_id, prev, bids, asks))  # = BookEvent(...), faster

    # ---- trades ----------------------------------------------------------------

    def _trade(self, st: OptionState) -> dict[str, Any]:
        rng = self.rng
        is_buy = rng.random() < 0.5
        level = st.best_ask() if is_buy else st.best_bid()
        price = level[0] if level else max(_round_tick(st.val.price_coin, up=is_buy), TICK_SIZE)
        amount = rng.choice(_AMOUNTS)
        last = st.last_price
        if last is None or price > last:
            tick_direction = 0
        elif price < last:
            tick_direction = 2
        else:
            tick_direction = 1 if st.last_tick_direction in (0, 1) else 3
        st.last_tick_direction = tick_direction
        st.last_price = price
        st.trade_seq += 1
        st.volume += amount
        st.open_interest = max(0.0, st.open_interest + (amount if rng.random() < 0.6 else -amount))
        st.low = min(st.low, price) if st.low else price
        st.high = max(st.high, price)
        self.next_trade_id += 1 + int(rng.random() * 3)
        return {
            "trade_seq": st.trade_seq,
            "trade_id": f"ETH-{self.next_trade_id}",
            "timestamp": self.now_ms,
            "tick_direction": tick_direction,
            "price": price,
            "mark_price": round(st.val.price_coin, 8),
            "iv": self.iv_of(st, price),
            "instrument_name": st.inst.name,
            "index_price": self.index_price,
            "direction": "buy" if is_buy else "sell",
            "amount": amount,
            "contracts": amount,
        }

    # ---- the step ----------------------------------------------------------------

    def _pick(self) -> OptionState:
        i = bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])
        return self.active[min(i, len(self.active) - 1)]

    def _burst_factor(self) -> float:
        cfg = self.config
        if cfg.burst_every_s <= 0:
            return 1.0
        t = (self.step_no * self.tick_s) % cfg.burst_every_s
        return cfg.burst_multiplier if t < cfg.burst_duration_s else 1.0

    def set_rate(self, rate_per_s: float) -> None:
        self.config = self.config.replace(rate_per_s=rate_per_s)
        self.min_steps = max(1, self.config.effective_min_interval_ms // self.config.tick_ms)
        self._rebuild_probs()

    def _open_step(self, now_ms: int) -> tuple[int, list[Event], bool]:
        """What a step does before its per-option loop (``step`` and ``step_native``
        alike): count it, stamp it, walk the index, run the listings and expiries, emit
        the index. ``(step, events, go_on)``; ``go_on`` is False when the platform is
        locked or nothing is listed (the step ends there)."""
        cfg = self.config
        self.step_no += 1
        step = self.step_no
        self.now_ms = now_ms
        if cfg.past_days_ms:  # the model's clock is the wire clock (loadtest/sim/clock.py)
            self.sim_ms = now_ms
        else:
            self.sim_ms = self.start_sim_ms + int(step * cfg.tick_ms * cfg.time_scale)
        events: list[Event] = []
        rng = self.rng
        if step % self.reprice_steps == 0:
            dt_years = REPRICE_MS * cfg.time_scale / YEAR_MS
            sigma = cfg.annual_vol
            z = rng.gauss(0.0, 1.0)
            self.spot *= math.exp(sigma * math.sqrt(dt_years) * z - 0.5 * sigma * sigma * dt_years)
            self.base_vol = min(1.5, max(0.3, self.base_vol + rng.gauss(0.0, 0.002)))
            self.index_price = round(self.spot, 2)
            self.spot_version += 1
        self._lifecycle(events)
        if self.locked or not self.active:
            return step, events, False
        if step % self.index_steps == 0:
            events.append(IndexEvent(self.index_price))
        return step, events, True

    def _close_step(self, step: int, events: list[Event]) -> None:
        """What a step does after its per-option loop: draw this step's trades (with the
        native engine, each traded option's book is read back first and its trade stats
        handed over after), emit the trade window."""
        cfg = self.config
        native = self.native
        self._trade_carry += cfg.trades_per_s * self.tick_s
        while self._trade_carry >= 1.0:
            self._trade_carry -= 1.0
            st = self._pick()
            self.sync(st)
            self.ensure_priced(st)
            self._pending_trades.append(self._trade(st))
            if native is not None and st.nid >= 0:
                native.set_trade(st.nid, *_native.trade_stats(st))
        if step % self.trade_window_steps == 0 and self._pending_trades:
            events.append(TradesEvent(self._pending_trades))
            self._pending_trades = []

    def step(self, now_ms: int) -> list[Event]:
        """Advance one step stamped ``now_ms`` (must exceed the previous step's)."""
        step, events, go_on = self._open_step(now_ms)
        if not go_on:
            return events
        min_steps = self.min_steps
        rand = self.rng.random
        version = self.spot_version
        emit = events.append
        reprice = self._reprice
        book_event = self._book_event
        due = step - min_steps  # a channel that last emitted at or before this step may emit
        for st, p_ticker, p_book in self._burst_rows if self._burst_factor() != 1.0 else self._rows:
            if p_ticker and st.last_ticker_step <= due and rand() < p_ticker:
                st.last_ticker_step = step
                if st.val_version != version:
                    reprice(st)
                emit(st.ticker_event)
            if p_book and st.last_book_step <= due and rand() < p_book:
                st.last_book_step = step
                if st.val_version != version:
                    reprice(st)
                ev = book_event(st)
                if ev is not None:
                    emit(ev)
        self._close_step(step, events)
        return events

    def sync(self, st: OptionState) -> None:
        """Bring ``st``'s book (and emission state) up to date from the native engine,
        if it owns the option (a no-op otherwise)."""
        if self.native is None or st.nid < 0:
            return
        bids, asks, st.change_id, st.book_ts_ms, targets, st.targets_version, last = self.native.state(st.nid)
        st.bids = dict(bids)
        st.asks = dict(asks)
        st.targets = targets
        st.last_ticker_step, st.last_book_step = last
        st.update_top()

    def set_book_ts(self, st: OptionState) -> None:
        """After a snapshot set ``st.book_ts_ms`` (it was 0): tell the native engine."""
        if self.native is not None and st.nid >= 0:
            self.native.set_book_ts(st.nid, st.book_ts_ms)

    def step_native(self, now_ms: int) -> tuple[list[Event], list[tuple[str, bytes, tuple[Any, ...]]]]:
        """``step`` with the per-option loop in the native engine: the index walk,
        listings, expiries, index and trade events here (the same draws from ``rng`` as
        ``step``), the ticker and book notifications from ``SimEngine.step`` as
        ``(channel, wire, record)`` (the ``.100ms`` channel's WebSocket frame and its
        send-log record). Only with ``native``."""
        native = self.native
        assert native is not None
        step, events, go_on = self._open_step(now_ms)
        if not go_on:
            return events, []
        frames = native.step(
            step,
            now_ms,
            self.sim_ms,
            self.spot,
            self.base_vol,
            self.spot_version,
            self.index_price,
            self._burst_factor() != 1.0,
            self.min_steps,
        )
        self._close_step(step, events)
        return events, frames

    def _lifecycle(self, events: list[Event]) -> None:
        """Expire instruments whose expiry passed, deliver them later, list new expiries."""
        changed = False
        for expiry_ms in [ms for ms in self.expiries if ms <= self.sim_ms]:
            del self.expiries[expiry_ms]
            pending = _Pending(self.sim_ms + int(self.config.settle_delay_s * 1000))
            for name, st in list(self.states.items()):
                if st.inst.expiry_ms == expiry_ms:
                    st.inst.state = "settlement"
                    events.append(StateEvent(name, "settlement"))
                    pending.names.append(name)
            self._deliveries.append(pending)
            changed = True
        while self._deliveries and self._deliveries[0].due_sim_ms <= self.sim_ms:
            pending = self._deliveries.pop(0)
            for name in pending.names:
                events.append(StateEvent(name, "delivered"))
                self.states.pop(name, None)
        if changed:
            for name in self._list_expiries(initial=False):
                events.append(StateEvent(name, "open"))
            self._rebuild_weights()
