"""The trade history the simulator generated, served like history.deribit.com (pure).

Every trade the model creates is added here, including the ones a ``skip_trades`` fault
kept off the wire, so a backfill can recover exactly what the collector missed. Trades
are kept in memory (one dict per trade, shared with the wire encoder): at the default
5 trades/s that is a few MB per hour.
"""

from __future__ import annotations

import bisect
from typing import Any


class TradeHistory:
    def __init__(self) -> None:
        self._by_inst: dict[str, tuple[list[int], list[int], list[dict[str, Any]]]] = {}
        self._all_ts: list[int] = []
        self._all: list[dict[str, Any]] = []

    def add(self, trade: dict[str, Any]) -> None:
        ts = trade["timestamp"]
        entry = self._by_inst.get(trade["instrument_name"])
        if entry is None:
            entry = ([], [], [])
            self._by_inst[trade["instrument_name"]] = entry
        entry[0].append(ts)
        entry[1].append(trade["trade_seq"])
        entry[2].append(trade)
        # trades arrive in time order per step; keep the global list sorted anyway
        if self._all_ts and ts < self._all_ts[-1]:
            i = bisect.bisect_right(self._all_ts, ts)
            self._all_ts.insert(i, ts)
            self._all.insert(i, trade)
        else:
            self._all_ts.append(ts)
            self._all.append(trade)

    def __len__(self) -> int:
        return len(self._all)

    def all_trades(self) -> list[dict[str, Any]]:
        return list(self._all)

    @staticmethod
    def _page(
        ts: list[int], items: list[dict[str, Any]], start_ms: int, end_ms: int, count: int, sorting: str
    ) -> dict[str, Any]:
        lo = bisect.bisect_left(ts, start_ms)
        hi = bisect.bisect_right(ts, end_ms)
        page = items[lo : min(hi, lo + count)] if sorting == "asc" else items[max(lo, hi - count) : hi][::-1]
        return {"trades": page, "has_more": hi - lo > count}

    def by_instrument_and_time(
        self, instrument: str, start_ms: int, end_ms: int, count: int, sorting: str
    ) -> dict[str, Any]:
        entry = self._by_inst.get(instrument)
        if entry is None:
            return {"trades": [], "has_more": False}
        return self._page(entry[0], entry[2], start_ms, end_ms, count, sorting)

    def by_currency_and_time(self, start_ms: int, end_ms: int, count: int, sorting: str) -> dict[str, Any]:
        return self._page(self._all_ts, self._all, start_ms, end_ms, count, sorting)

    def by_instrument_and_seq(
        self, instrument: str, start_seq: int, end_seq: int, count: int, sorting: str
    ) -> dict[str, Any]:
        entry = self._by_inst.get(instrument)
        if entry is None:
            return {"trades": [], "has_more": False}
        return self._page(entry[1], entry[2], start_seq, end_seq, count, sorting)
