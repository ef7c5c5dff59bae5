"""Deribit's trade history API (``history.deribit.com``; the simulator in tests).

``get_last_trades_by_instrument_and_time`` (one instrument: a ``trade_seq`` gap) and
``get_last_trades_by_currency_and_time`` (``*``: every instrument of the configured
currencies and kinds), pages of at most ``PAGE`` in ascending order, following
``has_more`` by advancing the start timestamp (trades sharing the boundary millisecond are
de-duplicated by trade id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from tickarchive.domain import ALL_INSTRUMENTS, TradeTick
from tickarchive.venue import TradeWindow
from tickarchive.venues.deribit.errors import HistoryError
from tickarchive.venues.deribit.normalize import HistoryPage, parse_history_trades

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

PAGE: Final = 1000


async def _page(client: httpx.AsyncClient, url: str, params: dict[str, Any]) -> HistoryPage:
    import httpx  # here, not at the top: replay imports this module and never fetches

    try:
        r = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise HistoryError(f"history API {url} unreachable: {exc}") from exc
    if r.status_code != 200:
        raise HistoryError(f"history API {url} answered HTTP {r.status_code}: {r.text[:200]}")
    page = parse_history_trades(r.content, time.time_ns() // 1000)
    if not isinstance(page, HistoryPage):
        raise HistoryError(f"history API {url}: unreadable page ({page.detail})")
    return page


async def history_trades(
    client: httpx.AsyncClient,
    history_url: str,
    currencies: Sequence[str],
    kinds: Sequence[str],
    window: TradeWindow,
) -> list[TradeTick]:
    """Every trade of the window from the history API (legs expanded), by trade id."""
    base_url = history_url.rstrip("/")
    if window.instrument != ALL_INSTRUMENTS:
        targets: list[tuple[str, dict[str, Any]]] = [
            ("get_last_trades_by_instrument_and_time", {"instrument_name": window.instrument})
        ]
    else:
        targets = [
            ("get_last_trades_by_currency_and_time", {"currency": c, "kind": k}) for c in currencies for k in kinds
        ]
    seen: dict[tuple[str, str], TradeTick] = {}
    for method, base in targets:
        url = f"{base_url}/public/{method}"
        start_ms = window.start_us // 1000
        end_ms = -(-window.end_us // 1000)
        while True:
            params = {**base, "start_timestamp": start_ms, "end_timestamp": end_ms}
            params.update(count=PAGE, sorting="asc")
            page = await _page(client, url, params)
            for t in page.trades:
                seen.setdefault((t.instrument, t.trade_id), t)
            if not page.has_more or not page.trades:
                break
            last_ms = page.trades[-1].ts_us // 1000
            if last_ms <= start_ms:
                log.warning("backfill: over %d trades in one ms at %d; skipping ahead", PAGE, start_ms)
                last_ms = start_ms + 1
            start_ms = last_ms
    out = list(seen.values())
    if window.first_seq is not None and window.last_seq is not None:
        lo, hi = window.first_seq, window.last_seq
        out = [t for t in out if lo <= t.trade_seq <= hi or t.instrument != window.instrument]
    return out
