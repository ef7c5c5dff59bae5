"""The market model: currencies, listings, emissions, trades, the life cycle (pure).

``MarketModel.step(now_ms)`` advances one generator step (``tick_ms`` of wall time,
``tick_ms * time_scale`` of simulated time) and returns the events of that step. It
never looks at subscriptions or sockets, and every random draw comes from one
``random.Random(seed)``: the same seed and config give the same event sequence, whatever
the wall clock says (wall time only appears in the timestamps).

Per channel, each instrument emits at most one ticker and one book message per step and
at most once per ``effective_min_interval_ms``. Every emission gets its own millisecond
within the step's window (after the previous step's time, up to ``now_ms``), so
timestamps fall on any millisecond and are strictly increasing per instrument and
channel. Book changes take their ``change_id`` from the currency's one counter, which
also advances with the exchange's activity we do not publish, so a book's id steps are
of every size.

Pieces: ``chain`` (instruments, grid), ``surface`` (index and volatility surface per
currency), ``quoting`` (an option's quotes and book), ``derivs`` (futures, the
perpetual, combos), ``lifecycle`` (listings, new strikes, settlement, expiry, delivery),
``trading`` (trades), ``state`` (the state they share); this module holds the step.
"""

from __future__ import annotations

from typing import Any

from tickarchive.loadtest.sim import lifecycle, trading
from tickarchive.loadtest.sim import native as _native
from tickarchive.loadtest.sim.chain import DAY_MS, YEAR_MS
from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.derivs import ComboState
from tickarchive.loadtest.sim.events import (
    BookEvent,
    Event,
    IndexEvent,
    StateEvent,
    TickerEvent,
    TradesEvent,
)
from tickarchive.loadtest.sim.quoting import OptionState
from tickarchive.loadtest.sim.state import REPRICE_MS, MarketState, State
from tickarchive.loadtest.sim.ticks import fround

__all__ = [
    "BookEvent",
    "Event",
    "IndexEvent",
    "MarketModel",
    "OptionState",
    "State",
    "StateEvent",
    "TickerEvent",
    "TradesEvent",
    "fround",
]

CHANGE_IDS_PER_S = 900.0
"""How fast a currency's change-id counter runs (wall time): Deribit's BTC counter moved
~450 ids/s in the 2021 captures. A book change takes the counter's value (at least its
previous id + 1), so a book's id steps grow with the time between its changes, as on
Deribit (p50 ~170 on busy books, p90 ~1,200–2,400, max ~24,000–40,000; the fidelity test
holds the simulator's to that at its test rate)."""


class MarketModel(MarketState):
    """The whole simulated market: its state (``state.MarketState``) and the step."""

    def __init__(self, config: SimConfig, wall_start_ms: int, native: bool = False) -> None:
        super().__init__(config, wall_start_ms, native)
        lifecycle.list_all(self, initial=True)

    def _open_step(self, now_ms: int) -> tuple[int, list[Event], bool]:
        """What a step does before its per-instrument loop (``step`` and ``step_native``
        alike): count it, stamp it, walk the index, run the life cycle, emit the index.
        ``(step, events, go_on)``; ``go_on`` is False when the platform is locked or
        nothing is listed (the step ends there)."""
        cfg = self.config
        self.step_no += 1
        step = self.step_no
        # the step's window: after the previous step (not into a lock that just ended)
        prev_ms = self.now_ms if self.now_ms and not self._was_locked else now_ms - 1
        if cfg.past_days_ms:
            # the wire clock jumps from one past day to the next, then to the wall clock
            # (loadtest/sim/clock.py): a step's messages stay on its own day, within its
            # own step of simulated time
            day_start = now_ms - now_ms % DAY_MS
            prev_ms = max(prev_ms, day_start - 1, now_ms - int(2 * cfg.tick_ms * cfg.past_speed))
        self.prev_ms = prev_ms
        self.now_ms = now_ms
        if cfg.past_days_ms:  # the model's clock is the wire clock (loadtest/sim/clock.py)
            self.sim_ms = now_ms
        else:
            self.sim_ms = self.start_sim_ms + int(step * cfg.tick_ms * cfg.time_scale)
        for st in self.window.expire(now_ms):  # trades leaving the tickers' 24 h stats
            if isinstance(st, OptionState) and st.nid >= 0 and st.inst.name in self.states:
                _native.set_trade(self.native, st)
        events: list[Event] = []
        rng = self.rng
        hidden = [int(rng.random() * 2.0 * CHANGE_IDS_PER_S * self.tick_s) for _ in self.currencies]
        if self.native is not None:
            self.native.hidden_ids(hidden)
        else:
            for m, n in zip(self.currencies, hidden, strict=True):
                m.change_id += n
        if step % self.reprice_steps == 0:
            dt_years = REPRICE_MS * cfg.time_scale / YEAR_MS
            for m in self.currencies:
                m.walk(rng, cfg.annual_vol, dt_years)
                if self.native is not None:
                    self.native.set_index(self.cur_index[m.currency], m.index_price)
            self.spot_version += 1
            lifecycle.reprice_derivatives(self, dt_years)
        self.update_terms()
        lifecycle.run(self, events)
        self._was_locked = self.locked
        if self.locked or not self.active:
            return step, events, False
        if step % self.index_steps == 0:
            for m in self.currencies:
                events.append(IndexEvent(m.index_name, m.index_price, self.stamp()))
            lifecycle.new_strikes(self, events)
        return step, events, True

    def _close_step(self, step: int, events: list[Event]) -> None:
        """What a step does after its per-instrument loop: draw this step's trades (with
        the native engine, each traded option's book is read back first and its trade
        stats handed over after), emit the trade window."""
        self._trade_carry += self.config.trades_per_s * self.tick_s
        while self._trade_carry >= 1.0:
            self._trade_carry -= 1.0
            trading.trade(self, self.pick())
        if step % self.trade_window_steps == 0 and self._pending_trades:
            events.append(TradesEvent(self._pending_trades, self._pending_routes))
            self._pending_trades = []
            self._pending_routes = []

    def _loop(self, step: int, events: list[Event]) -> None:
        """The per-instrument loop over ``_rows`` (all instruments, or the Python-owned ones)."""
        rand = self.rng.random
        version = self.spot_version
        emit = events.append
        book_event = self.book_event
        due = step - self.min_steps  # a channel that last emitted at or before this step may emit
        prev = self.prev_ms
        span = self.now_ms - prev
        for st, p_ticker, p_book in self._burst_rows if self._burst_factor() != 1.0 else self._rows:
            if p_ticker and st.last_ticker_step <= due and rand() < p_ticker:
                st.last_ticker_step = step
                ts = prev + 1 + int(rand() * span) if span > 1 else self.now_ms
                if type(st) is OptionState:
                    if st.val_version != version:
                        self._reprice(st)
                elif type(st) is ComboState:
                    lifecycle.price_combo(self, st)
                emit(TickerEvent(st, ts))
            if p_book and st.last_book_step <= due and rand() < p_book:
                st.last_book_step = step
                ts = prev + 1 + int(rand() * span) if span > 1 else self.now_ms
                if type(st) is OptionState:
                    if st.expired:
                        continue
                    if st.val_version != version:
                        self._reprice(st)
                elif type(st) is ComboState:
                    lifecycle.price_combo(self, st)
                ev = book_event(st, ts)
                if ev is not None:
                    emit(ev)

    def step(self, now_ms: int) -> list[Event]:
        """Advance one step stamped ``now_ms`` (must exceed the previous step's)."""
        step, events, go_on = self._open_step(now_ms)
        if not go_on:
            return events
        self._loop(step, events)
        self._close_step(step, events)
        return events

    def step_native(self, now_ms: int) -> tuple[list[Event], list[tuple[str, bytes, tuple[Any, ...]]]]:
        """``step`` with the options' loop in the native engine: the index walk, the life
        cycle, futures, combos, index and trade events here, the options' ticker and book
        notifications from ``SimEngine.step`` as ``(channel, wire, record)`` (the
        ``.100ms`` channel's WebSocket frame and its send-log record). Only with ``native``."""
        native = self.native
        assert native is not None
        step, events, go_on = self._open_step(now_ms)
        if not go_on:
            return events, []
        frames = native.step(
            step, self.prev_ms, now_ms, self.spot_version, self._burst_factor() != 1.0, self.min_steps
        )
        self._loop(step, events)
        self._close_step(step, events)
        return events, frames
