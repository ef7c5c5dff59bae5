"""The 24 h window behind a ticker's ``stats`` (pure): ``volume``, ``low`` and ``high``
are those of the instrument's trades of the last 24 hours, as on Deribit, so a consumer
can compare the ticker's volume with the trades it stored in the same window.

Every simulated trade enters the window at its wire timestamp and leaves it 24 h later
(``expire``, once per step); the volume falls by its amount, low and high are those of
the trades still inside (sliding minimum and maximum, amortised O(1) per trade). An
instrument without a trade in 24 h has volume 0: its ticker's stats turn null. The
trading history an instrument is listed with at start (``seed``: volume, low, high
drawn by the life cycle) stands for trades before the simulator started; it counts from
the first step and leaves the window 24 h later. An instrument listed later starts
without history. Memory: one entry per trade of the last 24 h (at 5 trades/s ~430,000).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tickarchive.loadtest.sim import ticks

DAY_MS = 86_400_000
_BEFORE_START = -1
"""Timestamp of the history an instrument is listed with (counts from the first step)."""


class _Trades:
    """One instrument's trades in the window: amounts in order, and the sliding low/high."""

    __slots__ = ("amounts", "highs", "lows")

    def __init__(self) -> None:
        self.amounts: deque[tuple[int, float]] = deque()
        """(sequence number, amount), oldest first."""
        self.lows: deque[tuple[int, float]] = deque()
        """(sequence number, low): increasing lows, the window's low first."""
        self.highs: deque[tuple[int, float]] = deque()
        """(sequence number, high): decreasing highs, the window's high first."""

    def add(self, seq: int, low: float, high: float, amount: float) -> None:
        self.amounts.append((seq, amount))
        lows = self.lows
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((seq, low))
        highs = self.highs
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((seq, high))

    def drop_oldest(self) -> float:
        """Remove the oldest trade; its amount."""
        seq, amount = self.amounts.popleft()
        if self.lows[0][0] == seq:
            self.lows.popleft()
        if self.highs[0][0] == seq:
            self.highs.popleft()
        return amount


class VolumeWindow:
    """The last 24 h of trades of every instrument (``stats.volume``, ``low``, ``high``)."""

    def __init__(self) -> None:
        self._entries: deque[tuple[int, Any, _Trades]] = deque()
        """(wire ms, state, its trades) of every trade in the window, oldest first."""
        self._by_state: dict[int, _Trades] = {}
        self._seq = 0
        self.first_ms: int | None = None
        """Wire ms of the first step (the start of the listed history's 24 h)."""

    def __len__(self) -> int:
        return len(self._entries)

    def _add(self, st: Any, ts_ms: int, low: float, high: float, amount: float) -> None:
        trades = self._by_state.get(id(st))
        if trades is None:
            trades = self._by_state[id(st)] = _Trades()
        self._seq += 1
        trades.add(self._seq, low, high, amount)
        self._entries.append((ts_ms, st, trades))
        st.low = trades.lows[0][1]
        st.high = trades.highs[0][1]

    def seed(self, st: Any, initial: bool) -> None:
        """The history ``st`` was listed with (its ``volume``, ``low``, ``high``): kept as
        trades before the start for the initial chain, dropped for a later listing."""
        if not st.volume:
            return
        if not initial:
            st.volume = 0.0
            st.low = st.high = 0.0
            return
        self._add(st, _BEFORE_START, st.low, st.high, st.volume)

    def trade(self, st: Any, ts_ms: int, price: float, amount: float) -> None:
        """A trade of ``st``: into the window, its volume, low and high updated."""
        st.volume = ticks.fround(st.volume + amount, 1e8, 8)
        self._add(st, ts_ms, price, price, amount)

    def expire(self, now_ms: int) -> list[Any]:
        """Drop the trades older than 24 h at ``now_ms``; the states whose stats changed
        (volume 0, low and high 0 when none is left)."""
        if self.first_ms is None:
            self.first_ms = now_ms
        entries = self._entries
        cutoff = now_ms - DAY_MS
        changed: dict[int, Any] = {}
        while entries:
            ts, st, trades = entries[0]
            if (self.first_ms if ts == _BEFORE_START else ts) > cutoff:
                break
            entries.popleft()
            amount = trades.drop_oldest()
            if trades.amounts:
                st.volume = max(0.0, ticks.fround(st.volume - amount, 1e8, 8))
                st.low = trades.lows[0][1]
                st.high = trades.highs[0][1]
            else:
                st.volume = 0.0
                st.low = st.high = 0.0
                del self._by_state[id(st)]
            changed[id(st)] = st
        return list(changed.values())
