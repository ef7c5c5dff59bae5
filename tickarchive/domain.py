"""Domain types: the market concepts every part of tickarchive speaks.

Parsers (``tickarchive.venues.deribit.normalize``) turn raw Deribit frames into these; the QuestDB writer,
the rollover, the archive and the API consume them or the tables they map to
(``tickarchive.tables``).

Conventions
-----------
* Times are integers in **microseconds** since the Unix epoch (``*_us``). Deribit sends
  milliseconds; the parsers multiply. ``recv_ts_us`` is our receive time.
* Prices and sizes are ``float`` parsed straight from the JSON text; they are never
  computed upon before storage, so they round-trip the exchange's decimals.
* ``None`` means "absent on the wire" (an empty book side, a field the exchange did
  not send) or one of Deribit's "no value" spellings (``bid_iv``/``ask_iv`` 0.0,
  ``estimated_delivery_price: "expired"``, ``last_price: "undefined"``). It becomes SQL NULL.
* All types are frozen ``msgspec.Struct``s: cheap to build on the hot path, hashable,
  and encodable to JSON/msgpack without glue.
"""

from __future__ import annotations

import enum

import msgspec

ALL_INSTRUMENTS = "*"
"""The ``instrument`` of a gap that covers a whole connection or the whole collector."""


class Side(enum.StrEnum):
    BID = "bid"
    ASK = "ask"


class BookAction(enum.StrEnum):
    NEW = "new"
    CHANGE = "change"
    DELETE = "delete"
    SNAPSHOT = "snapshot"
    """A level that is part of a full snapshot (``type == "snapshot"``)."""
    EMPTY = "empty"
    """A snapshot's marker for a side it shows empty (price and amount 0.0): a snapshot
    always stores at least one row per side, so a book rebuilt from ``book_changes`` is
    reset by every snapshot, an empty one included (docs/data-dictionary.md)."""


class TradeSource(enum.StrEnum):
    WS = "ws"
    BACKFILL = "backfill"


class GapKind(enum.StrEnum):
    DISCONNECT = "disconnect"
    BOOK_SEQ = "book_seq"
    TRADE_SEQ = "trade_seq"
    STALE = "stale"
    DOWNTIME = "downtime"
    REJECTED = "rejected"


class GapStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    BACKFILLED = "backfilled"
    UNRECOVERABLE = "unrecoverable"


class QuoteTick(msgspec.Struct, frozen=True, gc=False):
    """One ``ticker.{instrument}.{interval}`` notification: top of book, IVs, greeks."""

    instrument: str
    ts_us: int
    recv_ts_us: int
    bid_price: float | None = None
    bid_amount: float | None = None
    ask_price: float | None = None
    ask_amount: float | None = None
    bid_iv: float | None = None
    ask_iv: float | None = None
    mark_iv: float | None = None
    mark_price: float | None = None
    underlying_price: float | None = None
    underlying_index: str | None = None
    index_price: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None
    open_interest: float | None = None
    last_price: float | None = None
    settlement_price: float | None = None
    min_price: float | None = None
    max_price: float | None = None
    interest_rate: float | None = None
    volume_24h: float | None = None
    current_funding: float | None = None
    funding_8h: float | None = None
    estimated_delivery_price: float | None = None
    state: str | None = None
    high_24h: float | None = None
    low_24h: float | None = None
    price_change_24h: float | None = None
    volume_usd_24h: float | None = None
    volume_notional_24h: float | None = None
    interest_value: float | None = None
    delivery_price: float | None = None
    implied_bid: float | None = None
    implied_ask: float | None = None
    combo_state: str | None = None
    channel_interval: str | None = None
    """``raw``, ``100ms`` or ``agg2``: the interval of the channel the row came from."""


class TradeTick(msgspec.Struct, frozen=True, gc=False):
    """One trade, from ``trades.*`` channels or the history API (``source``)."""

    instrument: str
    ts_us: int
    recv_ts_us: int
    trade_id: str
    trade_seq: int
    price: float
    amount: float
    direction: str
    tick_direction: int | None = None
    mark_price: float | None = None
    index_price: float | None = None
    iv: float | None = None
    contracts: float | None = None
    block_trade_id: str | None = None
    liquidation: str | None = None
    combo_id: str | None = None
    combo_trade_id: str | None = None
    source: TradeSource = TradeSource.WS


class BookChange(msgspec.Struct, frozen=True, gc=False):
    """One price-level change of a ``book.{instrument}.{interval}`` message.

    ``amount`` is ``0.0`` for a delete. A snapshot message yields one BookChange per
    level with ``is_snapshot=True`` and ``action=SNAPSHOT``; a side the snapshot shows
    empty yields one ``action=EMPTY`` marker (price and amount 0.0), so every snapshot,
    an empty one included, is in the table.
    """

    instrument: str
    ts_us: int
    recv_ts_us: int
    change_id: int
    prev_change_id: int | None
    is_snapshot: bool
    side: Side
    action: BookAction
    price: float
    amount: float
    channel_interval: str | None = None
    """``raw``, ``100ms`` or ``agg2``: the interval of the channel the row came from."""


class IndexTick(msgspec.Struct, frozen=True, gc=False):
    """One ``deribit_price_index.{index}`` notification."""

    index_name: str
    ts_us: int
    recv_ts_us: int
    price: float


class InstrumentEvent(msgspec.Struct, frozen=True, gc=False):
    """An observed instrument and its state: from ``public/get_instruments`` (full
    description) or ``instrument.state.*`` notifications (name and state only)."""

    instrument: str
    ts_us: int
    recv_ts_us: int
    state: str
    kind: str | None = None
    base_currency: str | None = None
    quote_currency: str | None = None
    settlement_currency: str | None = None
    option_type: str | None = None
    strike: float | None = None
    expiration_us: int | None = None
    creation_us: int | None = None
    tick_size: float | None = None
    contract_size: float | None = None
    min_trade_amount: float | None = None
    settlement_period: str | None = None
    instrument_id: int | None = None


class ComboLeg(msgspec.Struct, frozen=True, gc=False):
    """One leg of a combo instrument (``public/get_combos``): ``amount`` is the signed
    ratio of the leg (+1 bought, -1 sold per combo contract)."""

    combo: str
    ts_us: int
    recv_ts_us: int
    instrument: str
    amount: float
    state: str | None = None
    combo_instrument_id: int | None = None


class Gap(msgspec.Struct, frozen=True, gc=False):
    """A window in which data may be missing, and why.

    ``instrument`` is an instrument name or ``ALL_INSTRUMENTS`` for a whole connection or
    the whole collector. ``end_us`` is ``None`` while the gap is still open. Re-writing a
    gap with the same (``start_us``, ``instrument``, ``kind``, ``connection``) updates it
    (the gaps table's dedup key).
    """

    kind: GapKind
    instrument: str
    start_us: int
    end_us: int | None
    cause: str
    connection: str
    status: GapStatus


class ConnectionHeartbeat(msgspec.Struct, frozen=True, gc=False):
    """A liveness row the collector writes per connection every second (``/health``)."""

    connection: str
    ts_us: int
    connected: bool
    subscribed_channels: int
    frames_total: int
    last_frame_us: int | None
    journal_backlog_bytes: int


class EncodedRows(msgspec.Struct, frozen=True, gc=False):
    """Rows of one table already encoded as QuestDB ILP protocol-v2 lines: what a venue's
    native fast path (``tickarchive.venues.deribit.native``) makes of a ticker or book frame, instead of domain events.

    ``payload`` is byte-identical to ``encode`` applied to the events the reference
    parser (``parse_frame``) makes of the same frame with protocol
    version 2 (``tests/venues/deribit/test_native.py``). ``instrument`` and ``ts_us`` (exchange
    time of the frame) are what the session and the writer read off an event.
    """

    table: str
    payload: bytes
    rows: int
    instrument: str
    ts_us: int


Event = QuoteTick | TradeTick | BookChange | IndexTick | InstrumentEvent | ComboLeg | Gap | ConnectionHeartbeat
"""Everything a frame can normalize into."""
