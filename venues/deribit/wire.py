"""msgspec structs for Deribit's JSON-RPC wire format (decoding only).

These mirror what Deribit sends, not what we store: the normalizer
(``tickarchive.venues.deribit.normalize``) turns them into ``tickarchive.domain`` events. Every field the
normalizer does not need is simply absent here, so msgspec skips it without building
Python objects; unknown fields never fail decoding (they stay in the journal).

Decoding is two-staged: ``Envelope`` reads the JSON-RPC envelope and keeps ``data`` /
``result`` as ``msgspec.Raw`` (a zero-copy slice of the frame); the channel prefix then
picks the typed decoder for ``data``. The envelope pass only skips over ``data``.

Types are deliberately lenient where Deribit is known to be loose (docs/collector.md):
``underlying_index`` may be a string or a number, ``estimated_delivery_price`` may be the
string ``"expired"``, ``last_price`` the string ``"undefined"``, ``trade_id`` is sometimes
a number in old data, numeric fields (``stats.*`` included) may be ``null``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Number = float | None
TimestampMs = Annotated[int, msgspec.Meta(ge=-(2**63 // 1000), le=(2**63 - 1) // 1000)]
"""Exchange milliseconds whose microseconds (x 1000) fit a 64-bit integer, as every table and
Arrow column needs: a frame outside that is malformed (invalid data, quarantined with its
bytes), never an overflow further down (``tests/venues/deribit/test_native_columns.py``)."""
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer stored in a LONG column (ids, sequence numbers): outside 64 bits it is invalid data."""
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
"""An integer stored in an INT column."""

_EMPTY = msgspec.Raw()
"""An absent raw field (``len(raw) == 0``); msgspec cannot make ``Raw`` optional."""


class Params(msgspec.Struct, gc=False):
    """``params`` of a notification: ``subscription`` (channel + data) or ``heartbeat`` (type)."""

    channel: str | None = None
    data: msgspec.Raw = _EMPTY
    type: str | None = None


class RpcErrorWire(msgspec.Struct, gc=False):
    code: int = 0
    message: str = ""
    data: msgspec.Raw = _EMPTY


class Envelope(msgspec.Struct, gc=False):
    """Any JSON-RPC frame Deribit sends: a notification (``method``) or a response (``id``)."""

    method: str | None = None
    params: Params | None = None
    id: int | str | None = None
    result: msgspec.Raw = _EMPTY
    error: RpcErrorWire | None = None
    usOut: int | None = None


class Greeks(msgspec.Struct, gc=False):
    delta: Number = None
    gamma: Number = None
    vega: Number = None
    theta: Number = None
    rho: Number = None


class Stats(msgspec.Struct, gc=False):
    volume: Number = None
    high: Number = None
    low: Number = None
    price_change: Number = None
    volume_usd: Number = None
    volume_notional: Number = None


class TickerWire(msgspec.Struct, gc=False):
    """``ticker.{instrument}.{interval}`` data (also ``quote.{instrument}``, a subset)."""

    instrument_name: str
    timestamp: TimestampMs
    best_bid_price: Number = None
    best_bid_amount: Number = None
    best_ask_price: Number = None
    best_ask_amount: Number = None
    bid_iv: Number = None
    ask_iv: Number = None
    mark_iv: Number = None
    mark_price: Number = None
    underlying_price: Number = None
    underlying_index: str | float | None = None
    index_price: Number = None
    greeks: Greeks | None = None
    open_interest: Number = None
    last_price: float | str | None = None
    settlement_price: Number = None
    min_price: Number = None
    max_price: Number = None
    interest_rate: Number = None
    stats: Stats | None = None
    current_funding: Number = None
    funding_8h: Number = None
    estimated_delivery_price: float | str | None = None
    state: str | None = None
    interest_value: Number = None
    delivery_price: Number = None
    implied_bid: Number = None
    implied_ask: Number = None
    combo_state: str | None = None


class TradeWire(msgspec.Struct, gc=False):
    """One element of a ``trades.*`` data array or of a history ``trades`` list."""

    instrument_name: str
    timestamp: TimestampMs
    trade_id: str | int
    trade_seq: Int64
    price: float
    amount: float
    direction: str
    tick_direction: Int32 | None = None
    mark_price: Number = None
    index_price: Number = None
    iv: Number = None
    contracts: Number = None
    block_trade_id: str | int | None = None
    liquidation: str | None = None
    combo_id: str | None = None
    combo_trade_id: str | int | None = None
    legs: list[TradeWire] | None = None


class BookWire(msgspec.Struct, gc=False):
    """``book.{instrument}.{interval}``: entries ``[action, price, amount]``."""

    instrument_name: str
    timestamp: TimestampMs
    change_id: Int64
    bids: list[tuple[str, float, float]]
    asks: list[tuple[str, float, float]]
    prev_change_id: Int64 | None = None
    type: str | None = None


class GroupedBookWire(msgspec.Struct, gc=False):
    """``book.{instrument}.{group}.{depth}.{interval}``: a full top-N view, entries
    ``[price, amount]``, only ``change_id``."""

    instrument_name: str
    timestamp: TimestampMs
    change_id: Int64
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    prev_change_id: Int64 | None = None
    type: str | None = None


class IndexWire(msgspec.Struct, gc=False):
    """``deribit_price_index.{index_name}`` data."""

    index_name: str
    timestamp: TimestampMs
    price: float


class InstrumentStateWire(msgspec.Struct, gc=False):
    """``instrument.state.{kind}.{currency}`` data."""

    instrument_name: str
    timestamp: TimestampMs
    state: str


class InstrumentWire(msgspec.Struct, gc=False):
    """One instrument of a ``public/get_instruments`` result. Older responses lack
    ``state``, ``instrument_id`` and ``settlement_currency``."""

    instrument_name: str
    kind: str | None = None
    state: str | None = None
    is_active: bool | None = None
    base_currency: str | None = None
    quote_currency: str | None = None
    settlement_currency: str | None = None
    option_type: str | None = None
    strike: Number = None
    expiration_timestamp: TimestampMs | None = None
    creation_timestamp: TimestampMs | None = None
    tick_size: Number = None
    contract_size: Number = None
    min_trade_amount: Number = None
    settlement_period: str | None = None
    instrument_id: Int64 | None = None


class ComboLegWire(msgspec.Struct, gc=False):
    instrument_name: str
    amount: float


class ComboWire(msgspec.Struct, gc=False):
    """One combo of a ``public/get_combos`` result (or the ``get_combo_details`` result)."""

    id: str
    legs: list[ComboLegWire]
    state: str | None = None
    instrument_id: Int64 | None = None
    creation_timestamp: TimestampMs | None = None
    state_timestamp: TimestampMs | None = None


class HistoryTradesWire(msgspec.Struct, gc=False):
    """The ``result`` of ``public/get_last_trades_by_*``."""

    trades: list[TradeWire]
    has_more: bool = False


# ---------------------------------------------------------------------------- one-pass frames
# The hot path decodes a whole notification in one pass when a cheap look at the bytes
# says which channel family it is (``normalize.parse_frame``); anything that does not
# validate falls back to the two-pass ``Envelope`` route, which classifies errors.


class TickerParams(msgspec.Struct, gc=False):
    channel: str
    data: TickerWire


class TickerFrame(msgspec.Struct, gc=False):
    method: str
    params: TickerParams


class BookParams(msgspec.Struct, gc=False):
    channel: str
    data: BookWire


class BookFrame(msgspec.Struct, gc=False):
    method: str
    params: BookParams


class TradesParams(msgspec.Struct, gc=False):
    channel: str
    data: list[TradeWire]


class TradesFrame(msgspec.Struct, gc=False):
    method: str
    params: TradesParams


class IndexParams(msgspec.Struct, gc=False):
    channel: str
    data: IndexWire


class IndexFrame(msgspec.Struct, gc=False):
    method: str
    params: IndexParams
