"""The trade history the simulator generated, served like history.deribit.com (pure).

Every trade the model creates is added here, including the ones a ``skip_trades`` fault
kept off the wire, so a backfill can recover exactly what the collector missed. Trades
are kept in memory (one dict per trade, shared with the wire encoder): at the default
5 trades/s that is a few MB per hour. A combo trade is kept as the combo's trade (its
legs inside, kind ``option_combo``) and as one option trade per leg, as Deribit's history
lists them.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from typing import Any

_KINDS = {"option": ("option",), "future": ("future",), "option_combo": ("option_combo",), "combo": ("option_combo",)}


class TradeHistory:
    def __init__(self) -> None:
        self._by_inst: dict[str, tuple[list[int], list[int], list[dict[str, Any]]]] = {}
        self._all_ts: list[int] = []
        self._all: list[dict[str, Any]] = []
        self._by_group: dict[tuple[str, str], tuple[list[int], list[dict[str, Any]]]] = {}
        """(currency, kind) -> the group's trades in time order."""

    def add(self, trade: dict[str, Any], currency: str = "ETH", kind: str = "option") -> None:
        group = self._by_group.get((currency, kind))
        if group is None:
            group = self._by_group[(currency, kind)] = ([], [])
        self._insert(group[0], group[1], trade)
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

    @staticmethod
    def _insert(ts_list: list[int], items: list[dict[str, Any]], trade: dict[str, Any]) -> None:
        ts = trade["timestamp"]
        if ts_list and ts < ts_list[-1]:
            i = bisect.bisect_right(ts_list, ts)
            ts_list.insert(i, ts)
            items.insert(i, trade)
        else:
            ts_list.append(ts)
            items.append(trade)

    def by_currency_and_time(
        self, currency: str, kind: str, start_ms: int, end_ms: int, count: int, sorting: str
    ) -> dict[str, Any]:
        """Trades of ``currency`` (or ``any``) and ``kind`` (or ``any``) in the window."""
        if currency == "any" and kind == "any":
            return self._page(self._all_ts, self._all, start_ms, end_ms, count, sorting)
        kinds = _KINDS.get(kind)
        slices: list[list[tuple[int, int, dict[str, Any]]]] = []
        total = 0
        for g, (cur, k) in enumerate(sorted(self._by_group)):
            if (currency != "any" and cur != currency) or (kinds is not None and k not in kinds):
                continue
            ts_list, items = self._by_group[(cur, k)]
            lo = bisect.bisect_left(ts_list, start_ms)
            hi = bisect.bisect_right(ts_list, end_ms)
            total += hi - lo
            rng = range(lo, hi) if sorting == "asc" else range(hi - 1, lo - 1, -1)
            slices.append([(ts_list[i], g, items[i]) for i in itertools.islice(rng, count)])
        merged = heapq.merge(*slices, key=lambda x: x[0], reverse=sorting != "asc")
        page = [t for _ts, _g, t in itertools.islice(merged, count)]
        return {"trades": page, "has_more": total > count}

    def by_instrument_and_seq(
        self, instrument: str, start_seq: int, end_seq: int, count: int, sorting: str
    ) -> dict[str, Any]:
        entry = self._by_inst.get(instrument)
        if entry is None:
            return {"trades": [], "has_more": False}
        return self._page(entry[1], entry[2], start_seq, end_seq, count, sorting)
