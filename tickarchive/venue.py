"""The venue seam: what the collector, the writer's catch-up, replay and backfill need of an
exchange, and nothing more (docs/architecture.md, "The venue seam").

A venue adapter is the package ``tickarchive.venues.<name>``; it exports ``build(settings)
-> Venue`` and imports only the core (this module, ``tickarchive.domain``, ...). The
collector, the journal, the writer and the stores never import an adapter: they are handed
a ``Venue`` (``tickarchive.venues.load``), so a second exchange is a new folder plus a
``collector.venue`` setting.

Everything an adapter hands back is venue-neutral:

* domain events (``tickarchive.domain``) or ``EncodedRows`` (a frame's rows already in
  QuestDB's ILP, from a native fast path that must equal the reference parser byte for
  byte);
* the signals below, which the sans-I/O ``Session`` returns next to the events;
* ``Malformed``: a frame the adapter could not understand (kept in the journal, counted,
  never an exception).

Times are µs since the epoch; ``recv_ts_us`` is our receive time, passed in by the caller
(adapters read no clock).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec
import pyarrow as pa

from tickarchive.domain import ComboLeg, EncodedRows, Event, Gap, InstrumentEvent, TradeTick

if TYPE_CHECKING:
    import httpx

    from tickarchive.pacing import TokenBucket

# ---------------------------------------------------------------------------- signals


class Subscribed(msgspec.Struct, frozen=True, gc=False):
    """The exchange confirmed these channels on the current connection."""

    channels: tuple[str, ...]


class Unsubscribed(msgspec.Struct, frozen=True, gc=False):
    channels: tuple[str, ...]


class Rejected(msgspec.Struct, frozen=True, gc=False):
    """The exchange refused channels (each also opens a ``rejected`` gap)."""

    channels: tuple[str, ...]
    reason: str


class GapDetected(msgspec.Struct, frozen=True, gc=False):
    """A gap opened (``gap.end_us is None``) or a later version of it (closed, resolved);
    the versions of one gap share its key, so the gaps table keeps the last."""

    gap: Gap
    first_missing_seq: int | None = None
    last_missing_seq: int | None = None


class ReconnectRequired(msgspec.Struct, frozen=True, gc=False):
    """Close the socket and reconnect (silence, a rate-limit error that ends the session)."""

    reason: str


class InstrumentsReceived(msgspec.Struct, frozen=True, gc=False):
    """An instrument-list answer to ``Session.request_instruments``."""

    request_id: int
    currency: str
    kind: str | None
    instruments: list[InstrumentEvent]


class RpcFailed(msgspec.Struct, frozen=True, gc=False):
    """Any other error answer to a request of ours."""

    request_id: int | str | None
    method: str
    code: int
    message: str


class MalformedKind(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    UNEXPECTED_SHAPE = "unexpected_shape"
    UNKNOWN_CHANNEL = "unknown_channel"
    INVALID_DATA = "invalid_data"


SAMPLE_BYTES: Final = 200
"""How much of a malformed frame ``Malformed.sample`` keeps."""


class Malformed(msgspec.Struct, frozen=True, gc=False):
    """A frame the adapter could not turn into anything; it stays in the journal."""

    kind: MalformedKind
    family: str
    """Channel family (``ticker``, ``book``, ...) or ``""`` when unknown."""
    detail: str
    sample: bytes

    @property
    def key(self) -> str:
        """The counter/log key: ``kind`` or ``kind:family``."""
        return f"{self.kind.value}:{self.family}" if self.family else self.kind.value


Signal = Subscribed | Unsubscribed | Rejected | GapDetected | ReconnectRequired | InstrumentsReceived | RpcFailed
Output = Event | EncodedRows | Signal | Malformed
"""What a session returns for a frame, a timer tick or a lost connection."""

Rows = Sequence[Event | EncodedRows]
"""The rows one journaled frame produces (the writer's unit)."""


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class FetchedInstruments:
    """One instrument-list REST answer: the raw body (the collector journals it, connection
    ``rest``, before using it) and the rows it holds: ``InstrumentEvent``s, or the
    ``ComboLeg``s of a combo list (``kind`` ``combos``)."""

    currency: str
    kind: str
    body: bytes
    recv_ts_us: int
    events: list[InstrumentEvent | ComboLeg]


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """How the collector paces and watches a venue's connections (the venue's limits and
    the operator's choices, from the venue's settings section)."""

    subscribe_rate_per_s: float
    """Subscribe/unsubscribe requests per second over every connection."""
    reconnects_per_s: float
    """Connections opened per second over every connection (a global limiter)."""
    reconnect_min_s: float
    reconnect_max_s: float
    """Back-off of one connection (and of discovery) between attempts."""
    reconcile_interval_s: float
    """How often the instrument list is fetched again (listings and expiries)."""
    liquid_instruments: tuple[str, ...] = ()
    """Instruments whose silence is a ``stale`` gap."""


@dataclass(frozen=True, slots=True)
class TradeWindow:
    """Trades to re-fetch from a venue's history: one instrument (or ``*`` = every
    instrument of the configured currencies and kinds) between two exchange times (µs,
    inclusive); for a ``trade_seq`` gap, the missing sequence numbers."""

    instrument: str
    start_us: int
    end_us: int
    first_seq: int | None = None
    last_seq: int | None = None


class Decoded(msgspec.Struct, gc=False):
    """What replay makes of one raw frame: its events, the sequence gaps it reveals
    (re-derived, connection ``replay``) and, for a frame it cannot read, ``malformed``."""

    events: Sequence[Event]
    gaps: list[Gap]
    malformed: Malformed | None = None


ORD_COLUMN: Final = "_ord"
"""The column of ``DecodedBatch.tables`` that orders rows as they were received:
``frame index << ORD_ROW_BITS | row within the frame`` (unsigned 64-bit)."""
ORD_ROW_BITS: Final = 20


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Raw frames in one buffer (replay reads them in bulk): frame ``i`` is
    ``buf[starts[i]:ends[i]]``, received at ``recv_ts_us[i]``; the three arrays are
    little-endian u64, u64 and i64 bytes."""

    buf: bytes
    starts: bytes
    ends: bytes
    recv_ts_us: bytes
    columns: Any = None
    """Rows a native reader already decoded straight into columns while reading the
    frames (``.tjz`` archive files: the Deribit adapter's ``deribit_columns`` form); the
    frames it took have no text here (``starts[i] == ends[i]``). ``None``: every frame
    is text. Only a decoder whose ``tjz_columns`` is true is given such batches."""

    def __len__(self) -> int:
        return len(self.starts) // 8

    def frame(self, i: int) -> bytes:
        s = memoryview(self.starts).cast("Q")
        e = memoryview(self.ends).cast("Q")
        return self.buf[s[i] : e[i]]

    def recv(self, i: int) -> int:
        return int(memoryview(self.recv_ts_us).cast("q")[i])

    def items(self) -> Iterable[tuple[bytes, int]]:
        """(frame, recv_ts_us) of every frame, in order."""
        buf = self.buf
        s = memoryview(self.starts).cast("Q")
        e = memoryview(self.ends).cast("Q")
        r = memoryview(self.recv_ts_us).cast("q")
        for i in range(len(s)):
            yield buf[s[i] : e[i]], r[i]


@dataclass(slots=True)
class DecodedBatch:
    """What replay makes of a ``FrameBatch``: rows a native path decoded straight into
    columns (``tables``: ``tickarchive.rows.arrow_schema(table)`` plus ``ORD_COLUMN``, by
    table name), the events of the frames the reference decoded (``(frame index, events)``),
    the sequence gaps the frames reveal (in frame order), the malformed frames, and the
    frames ``is_foreign`` claimed (indices, untouched: the caller's own records)."""

    tables: dict[str, pa.Table]
    events: list[tuple[int, Sequence[Event]]]
    gaps: list[Gap]
    malformed: list[Malformed]
    foreign: list[int]


# ---------------------------------------------------------------------------- protocols


class Session(Protocol):
    """The sans-I/O protocol state of one connection: frames in, events, signals and
    frames to send out. It owns no socket and reads no clock (``now_us`` is passed in)."""

    @property
    def connection(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def notifications(self) -> int: ...
    @property
    def desired_channels(self) -> frozenset[str]: ...
    @property
    def subscribed_channels(self) -> frozenset[str]: ...

    def subscribe(self, channels: Iterable[str]) -> None: ...
    def unsubscribe(self, channels: Iterable[str]) -> None: ...
    def mark_liquid(self, instruments: Iterable[str]) -> None: ...
    def forget_instrument(self, instrument: str) -> None: ...
    def connection_made(self, now_us: int) -> None: ...
    def connection_lost(self, now_us: int) -> list[Output]: ...
    def receive_frame(self, frame: bytes, now_us: int) -> list[Output]: ...
    def poll(self, now_us: int) -> list[Output]: ...
    def data_to_send(self, now_us: int) -> list[bytes]: ...
    def next_send_us(self, now_us: int) -> int | None: ...


class ChannelPlan(Protocol):
    """Which channels exist and which connection carries each (pure)."""

    @property
    def connections(self) -> int: ...
    @property
    def currencies(self) -> tuple[str, ...]: ...
    @property
    def kinds(self) -> tuple[str, ...]: ...

    def instrument_channels(self, instrument: str) -> list[str]: ...
    def shard(self, instrument: str) -> int: ...
    def layout(self, instruments: Iterable[str]) -> list[list[str]]: ...


class ReplayDecoder(Protocol):
    """Stateful (sequence tracking across frames) reference decoding for replay."""

    @property
    def tjz_columns(self) -> bool:
        """``decode_batch`` takes ``FrameBatch.columns`` from the native ``.tjz`` reader
        (``tickarchive_native.TjzColumns``: Deribit ticker and book frames as columns)."""
        ...

    def decode(self, frame: bytes, recv_ts_us: int) -> Decoded: ...

    def decode_batch(self, batch: FrameBatch, is_foreign: Callable[[bytes], bool]) -> DecodedBatch:
        """``decode`` of every frame of ``batch`` in order (the same rows and gaps), with
        the bulk of them decoded natively into columns where the adapter can; frames for
        which ``is_foreign(frame)`` is true are skipped and listed."""
        ...


class Venue(Protocol):
    """One exchange. Built once per process from the settings (``build(settings)``)."""

    @property
    def name(self) -> str:
        """The adapter's package name (``deribit``), as in ``collector.venue``."""
        ...
    @property
    def display_name(self) -> str:
        """How operators write it (``Deribit``): in log lines and messages."""
        ...
    @property
    def ws_url(self) -> str: ...
    @property
    def plan(self) -> ChannelPlan: ...
    @property
    def policy(self) -> ConnectionPolicy: ...
    @property
    def live_states(self) -> frozenset[str]:
        """Instrument states whose channels stay subscribed."""
        ...

    def new_session(self, connection: str, subscribe_limiter: TokenBucket | None) -> Session: ...

    async def fetch_instruments(self, client: httpx.AsyncClient) -> list[FetchedInstruments]:
        """Every listed instrument of the configured currencies and kinds (raises the
        adapter's ``VenueUnavailable`` when the exchange cannot be reached or read)."""
        ...

    async def history_trades(self, client: httpx.AsyncClient, window: TradeWindow) -> list[TradeTick]:
        """Every trade of the window from the exchange's history (``source = backfill``),
        one per (instrument, trade_id); raises ``VenueUnavailable``."""
        ...

    def rows_of_frame(self, frame: bytes, recv_ts_us: int) -> Rows:
        """The rows a journaled frame produces when it is read back (the writer's catch-up):
        the same rows the live session produced, native fast path included; nothing for
        heartbeats, RPC replies and malformed frames."""
        ...

    def replay_decoder(self, connection: str) -> ReplayDecoder: ...

    def channel_label(self, frame: bytes) -> str:
        """A frame's ``channel`` metric label (``ticker``, ``book``, ``trades``, ``index``,
        ``instrument_state``, ``heartbeat``, ``rpc``, ``other``, ...) from a cheap look at
        its bytes."""
        ...
