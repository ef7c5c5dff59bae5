"""What one generator step produces (``MarketModel.step``), before encoding."""

from __future__ import annotations

from typing import Any, NamedTuple


class TickerEvent(NamedTuple):
    state: Any
    """An ``OptionState``, ``FutureState`` or ``ComboState``."""
    ts_ms: int


class BookEvent(NamedTuple):
    state: Any
    change_id: int
    prev_change_id: int
    bids: list[list[Any]]
    asks: list[list[Any]]
    ts_ms: int


class TradesEvent(NamedTuple):
    trades: list[dict[str, Any]]
    """Trades of the last 100 ms window, each the exact wire/history object (a combo
    trade carries its legs; the legs are also in the list, as option trades)."""
    routes: list[tuple[str, str]]
    """(currency, kind) of each trade: the ``trades.{kind}.{currency}`` channels it goes to."""


class IndexEvent(NamedTuple):
    index_name: str
    price: float
    ts_ms: int


class StateEvent(NamedTuple):
    instrument: str
    state: str
    kind: str
    currency: str


Event = TickerEvent | BookEvent | TradesEvent | IndexEvent | StateEvent
