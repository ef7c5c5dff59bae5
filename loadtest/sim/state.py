"""The simulated market's state (pure): currencies, instruments, pricing terms, emission
rows, the change-id counters, and what the model's parts use of them (``lifecycle``,
``trading``, ``publish``); ``market.MarketModel`` adds the step.

Kept apart from the step so that the parts the step calls (the life cycle, trading)
depend on the state, not on the step: no module cycle.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from typing import Any

from tickarchive.loadtest.sim import native as _native
from tickarchive.loadtest.sim import quoting
from tickarchive.loadtest.sim.chain import COMBO, DAY_MS, FUTURE, YEAR_MS, Expiry, Instrument
from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.derivs import ComboState, FutureState
from tickarchive.loadtest.sim.events import BookEvent
from tickarchive.loadtest.sim.quoting import OptionState
from tickarchive.loadtest.sim.surface import CurrencyMarket, Terms
from tickarchive.loadtest.sim.window import VolumeWindow

REPRICE_MS = 100
"""The index moves (and instruments reprice) every 100 ms of wall time."""
TRADE_WINDOW_MS = 100
"""Trades are published in 100 ms batches, as the ``.100ms`` trade channels do."""
SETTLEMENT_HOUR_UTC = 8

State = OptionState | FutureState | ComboState


def last_settlement(sim_ms: int) -> int:
    """The latest 08:00 UTC at or before ``sim_ms``."""
    d = dt.datetime.fromtimestamp(sim_ms / 1000, tz=dt.UTC)
    at = d.replace(hour=SETTLEMENT_HOUR_UTC, minute=0, second=0, microsecond=0)
    if at > d:
        at -= dt.timedelta(days=1)
    return int(at.timestamp() * 1000)


def activity(model: MarketState, st: State) -> float:
    """Relative quote and trade activity: near-the-money, short-dated options and the
    perpetual most."""
    inst = st.inst
    if inst.kind == FUTURE:
        if inst.perpetual:
            return 6.0
        days = max((inst.expiry_ms - model.sim_ms) / DAY_MS, 1.0)
        return float(1.5 * (1.0 / days) ** 0.2)
    if inst.kind == COMBO:
        return 0.25
    spot = model.currencies[st.cur].spot
    t_years = max((inst.expiry_ms - model.sim_ms) / YEAR_MS, 1.0 / 365)
    moneyness = abs(math.log(inst.strike / spot)) / (0.8 * math.sqrt(t_years))
    weight = math.exp(-0.5 * moneyness * moneyness) + 0.15
    return float(weight * (1.0 / (t_years * 365.0 + 1.0)) ** 0.3)


class MarketState:
    """The simulated market's state and what every part of the model uses of it (the
    step is ``market.MarketModel``'s). Not thread-safe; owned by the simulator's generator."""

    def __init__(self, config: SimConfig, wall_start_ms: int, native: bool = False) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.native: Any = None
        """With ``native``: the ``tickarchive_native.SimEngine`` that owns the options'
        books and emission state once listed (see ``MarketModel.step_native``), else None."""
        if native:
            self.native = _native.new_engine(config)
        self.start_sim_ms = config.start_ms if config.start_ms is not None else wall_start_ms
        if config.past_days_ms and config.start_ms is None:
            self.start_sim_ms = config.past_days_ms[0]  # the chain of the first past day
        self.sim_ms = self.start_sim_ms
        self.step_no = 0
        self.now_ms = 0
        self.prev_ms = 0
        self.currencies = [CurrencyMarket(c, config.spot_of(c), self.rng) for c in config.currencies]
        self.cur_index = {m.currency: i for i, m in enumerate(self.currencies)}
        if self.native is not None:
            for m in self.currencies:
                _native.add_currency(self.native, m)
        self.spot_version = 0
        self.tick_s = config.tick_ms / 1000.0
        self.min_steps = max(1, config.effective_min_interval_ms // config.tick_ms)
        self.reprice_steps = max(1, REPRICE_MS // config.tick_ms)
        self.trade_window_steps = max(1, TRADE_WINDOW_MS // config.tick_ms)
        self.index_steps = max(1, config.index_interval_ms // config.tick_ms)
        self.next_instrument_id = 200_000 + self.rng.randrange(50_000)
        self.states: dict[str, State] = {}
        self.expiries: dict[tuple[int, int], Expiry] = {}
        """(currency index, expiry ms) -> option expiry."""
        self.expiry_ids: dict[tuple[int, int], int] = {}
        """(currency index, expiry ms) -> the expiry's id in the native engine's terms table."""
        self.terms: dict[tuple[int, int], Terms] = {}
        self.terms_version = -1
        self.active: list[State] = []
        """Every listed instrument that quotes (options before expiry, futures, combos)."""
        self._cum: list[float] = []
        self._rows: list[tuple[State, float, float]] = []
        self._burst_rows: list[tuple[State, float, float]] = []
        """What the per-step loop walks: each instrument with its ticker and book emission
        probabilities per step (normal, during bursts). With the native engine only the
        instruments it does not own (futures, combos)."""
        self._trade_carry = 0.0
        self.last_trade_ms = 0
        self.window = VolumeWindow()
        """The last 24 h of trades behind the tickers' ``stats`` (``window.py``)."""
        self._pending_trades: list[dict[str, Any]] = []
        self._pending_routes: list[tuple[str, str]] = []
        self.deliveries: list[tuple[int, list[str]]] = []
        """(simulated ms due, instruments) to deliver, in time order."""
        self.delivered_names: set[str] = set()
        self.listed_strikes: dict[tuple[int, int], set[float]] = {}
        """(currency index, expiry ms) -> the strikes listed (new strikes extend the range)."""
        self.locked = False
        """Platform maintenance: no market data is generated while True."""
        self._was_locked = False
        self.last_settlement_ms = last_settlement(self.sim_ms)
        self.update_terms()

    # ---- ids, terms -------------------------------------------------------------

    def next_change_id(self, cur: int, prev: int) -> int:
        """The id of a book change after ``prev`` (that book's last id): currency ``cur``'s
        counter, at least ``prev + 1``."""
        if self.native is not None:
            value: int = self.native.next_change_id(cur, prev)
            return value
        return max(self.currencies[cur].change_id, prev + 1)

    def old_change_id(self, cur: int) -> int:
        """The id of a book's last change before the simulator started (an older id)."""
        counter = self.native.change_id(cur) if self.native is not None else self.currencies[cur].change_id
        return int(counter) - self.rng.randrange(1, 40_000)

    def update_terms(self, force: bool = False) -> None:
        """Per-expiry pricing terms at the current spot and simulated time (each reprice,
        and after listings: ``force``)."""
        if self.terms_version == self.spot_version and not force:
            return
        self.terms_version = self.spot_version
        rows = []
        for key, expiry in self.expiries.items():
            t = self.currencies[key[0]].terms(expiry.expiry_ms, self.sim_ms, YEAR_MS)
            self.terms[key] = t
            if self.native is not None:
                rows.append((self.expiry_id(key), t))
        if rows:
            _native.set_terms(self.native, rows)

    def expiry_id(self, key: tuple[int, int]) -> int:
        got = self.expiry_ids.get(key)
        if got is None:
            got = self.expiry_ids[key] = len(self.expiry_ids)
        return got

    def terms_of(self, st: OptionState) -> Terms:
        key = (st.cur, st.inst.expiry_ms)
        t = self.terms.get(key)
        if t is None:
            t = self.terms[key] = self.currencies[st.cur].terms(st.inst.expiry_ms, self.sim_ms, YEAR_MS)
        return t

    def ensure_priced(self, st: OptionState) -> None:
        if st.val_version != self.spot_version:
            quoting.reprice(st, self.terms_of(st), self.spot_version)

    def _reprice(self, st: OptionState) -> None:
        quoting.reprice(st, self.terms_of(st), self.spot_version)

    def iv_of(self, st: OptionState, price: float, is_bid: bool = True) -> float:
        return quoting.iv_of(st, price, is_bid)

    # ---- weights and rates ---------------------------------------------------------

    def rebuild_weights(self) -> None:
        self.active = [st for st in self.states.values() if st.inst.state == "open"]
        self.active.sort(
            key=lambda st: (st.inst.currency, st.inst.kind, st.inst.expiry_ms, st.inst.strike, st.inst.name)
        )
        cum = 0.0
        self._cum = []
        for st in self.active:
            st.inst.weight = activity(self, st)
            cum += st.inst.weight
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
        # an expired option still sends its last tickers until delivered, never a book change
        expired = [st for st in self.states.values() if isinstance(st, OptionState) and st.expired]
        for st in expired:
            st.p_book = st.pb_book = 0.0
            st.p_ticker = st.pb_ticker = min(cap, 0.2 * cap)
        quoting_ = [*self.active, *expired]
        if self.native is None:
            self._rows = [(st, st.p_ticker, st.p_book) for st in quoting_]
            self._burst_rows = [(st, st.pb_ticker, st.pb_book) for st in quoting_]
            return
        options = [st for st in quoting_ if isinstance(st, OptionState)]
        for st in options:
            if st.nid < 0:
                st.nid = _native.register(self.native, st, self.expiry_id((st.cur, st.inst.expiry_ms)))
        self.native.set_rows(
            [(st.nid, st.p_ticker, st.p_book) for st in options],
            [(st.nid, st.pb_ticker, st.pb_book) for st in options],
        )
        others = [st for st in quoting_ if not isinstance(st, OptionState)]
        self._rows = [(st, st.p_ticker, st.p_book) for st in others]
        self._burst_rows = [(st, st.pb_ticker, st.pb_book) for st in others]

    def listed(self) -> list[Instrument]:
        """Instruments currently listed (open), in chain order."""
        return [st.inst for st in self.active]

    def set_rate(self, rate_per_s: float) -> None:
        self.config = self.config.replace(rate_per_s=rate_per_s)
        self.min_steps = max(1, self.config.effective_min_interval_ms // self.config.tick_ms)
        self._rebuild_probs()

    def _burst_factor(self) -> float:
        cfg = self.config
        if cfg.burst_every_s <= 0:
            return 1.0
        t = (self.step_no * self.tick_s) % cfg.burst_every_s
        return cfg.burst_multiplier if t < cfg.burst_duration_s else 1.0

    def pick(self) -> State:
        """An instrument drawn by activity weight (who trades next)."""
        i = bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])
        return self.active[min(i, len(self.active) - 1)]

    # ---- books -------------------------------------------------------------------

    def book_event(self, st: State, ts_ms: int) -> BookEvent | None:
        """One book change of ``st`` (Python-owned books), or None when nothing changes."""
        rand = self.rng.random
        fresh: tuple[list[float], list[float]] | None = None
        if st.targets_version != self.spot_version:
            st.targets_version = self.spot_version
            if isinstance(st, OptionState):
                fresh = quoting.targets(st)
                scale = st.params.size_scale
            else:
                fresh = st.target_levels()
                scale = st.size_scale
        else:
            scale = st.params.size_scale if isinstance(st, OptionState) else st.size_scale
        if not st.targets[0] and not st.targets[1] and fresh is None:
            return None
        bids, asks = quoting.book_actions(st, fresh, rand, scale)
        if not bids and not asks:
            return None
        prev = st.change_id
        st.change_id = self.next_change_id(st.cur, prev)
        st.book_ts_ms = ts_ms
        return BookEvent(st, st.change_id, prev, bids, asks, ts_ms)

    def sync(self, st: State) -> None:
        """Bring an option's book (and emission state) up to date from the native engine,
        if it owns the option (a no-op otherwise)."""
        if self.native is None or not isinstance(st, OptionState) or st.nid < 0:
            return
        bids, asks, st.change_id, st.book_ts_ms, targets, st.targets_version, last = self.native.state(st.nid)
        st.bids = dict(bids)
        st.asks = dict(asks)
        st.targets = targets
        st.last_ticker_step, st.last_book_step = last
        st.update_top()

    def set_book_ts(self, st: State) -> None:
        """After a snapshot set ``st.book_ts_ms`` (it was 0): tell the native engine."""
        if self.native is not None and isinstance(st, OptionState) and st.nid >= 0:
            self.native.set_book_ts(st.nid, st.book_ts_ms)

    # ---- the step ----------------------------------------------------------------


    def stamp(self) -> int:
        """A millisecond within this step's window (after the previous step, up to now)."""
        span = self.now_ms - self.prev_ms
        return self.prev_ms + 1 + int(self.rng.random() * span) if span > 1 else self.now_ms

    def add_trade(self, trade: dict[str, Any], currency: str, kind: str) -> None:
        self._pending_trades.append(trade)
        self._pending_routes.append((currency, kind))
