"""``DeribitVenue``: the Deribit adapter behind ``tickarchive.venue.Venue``.

It binds the settings (``deribit.*``) to the pieces of this package: the channel plan
(``discovery.ChannelPlan``), one sans-I/O ``session.DeribitSession`` per connection,
instrument discovery over REST, the history API (``history``), the reference parsers
(``normalize``) with the native fast path (``native``) for journal read-back, and a
replay decoder that re-derives the book and trade sequence gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from tickarchive.domain import EncodedRows, Event, Gap, TradeTick
from tickarchive.settings import DeribitSettings, Settings
from tickarchive.venue import (
    ConnectionPolicy,
    Decoded,
    DecodedBatch,
    FetchedInstruments,
    FrameBatch,
    Malformed,
    Rows,
    TradeWindow,
)
from tickarchive.venues.deribit import native
from tickarchive.venues.deribit.discovery import LIVE_STATES, ChannelPlan, fetch_instruments, rest_url_of_ws
from tickarchive.venues.deribit.history import history_trades
from tickarchive.venues.deribit.normalize import Notification, Response, events_of_response, parse_frame
from tickarchive.venues.deribit.sequence import BookSequence, TradeSequence, sequenced_trades
from tickarchive.venues.deribit.session import DeribitSession, SessionConfig

if TYPE_CHECKING:
    import httpx  # imported where a request is made: replay never needs it (docs/archive.md, "Replay speed")

    from tickarchive.pacing import TokenBucket

NAME: Final = "deribit"
_NOTHING: Final[list[Event]] = []


def events_of_frame(frame: bytes, recv_ts_us: int) -> list[Event]:
    """The reference parser's events of one frame: notifications; responses holding
    instruments or history trades; nothing for heartbeats, RPC replies, malformed frames."""
    o = parse_frame(frame, recv_ts_us)
    if type(o) is Notification:
        return o.events
    if type(o) is Response:
        return events_of_response(o, recv_ts_us)
    return _NOTHING


def rows_of_frame(frame: bytes, recv_ts_us: int) -> Sequence[Event | EncodedRows]:
    """``events_of_frame`` with ticker and book frames through the native fast path when it
    is there (``EncodedRows``: the same bytes)."""
    if native.ENABLED:
        n = native.fast_notification(frame, recv_ts_us)
        if n is not None:
            return n.events
    return events_of_frame(frame, recv_ts_us)


class ReplayDecoder:
    """Reference decoding for replay, with the sequence gaps the frames reveal."""

    tjz_columns: Final = native.COLUMNS_ENABLED
    """``decode_batch`` takes the columns ``TjzColumns`` decoded (``FrameBatch.columns``)."""

    def __init__(self, connection: str) -> None:
        self._books = BookSequence(connection)
        self._trades = TradeSequence(connection)

    def decode(self, frame: bytes, recv_ts_us: int) -> Decoded:
        o = parse_frame(frame, recv_ts_us)
        if type(o) is Notification:
            gaps: list[Gap] = []
            if o.book is not None:
                gaps.extend(self._books.check(o.book))
            elif o.channel.startswith("trades."):
                for ev in sequenced_trades(o.events):
                    tg = self._trades.check(ev)
                    if tg is not None:
                        gaps.append(tg.gap)
            return Decoded(o.events, gaps)
        if type(o) is Response:
            return Decoded(events_of_response(o, recv_ts_us), [])
        if isinstance(o, Malformed):
            return Decoded(_NOTHING, [], o)
        return Decoded(_NOTHING, [])

    def decode_batch(self, batch: FrameBatch, is_foreign: Callable[[bytes], bool]) -> DecodedBatch:
        """``decode`` of every frame in order; ticker and book frames natively into columns
        (``native.columns``: the same rows), their book ids checked in frame order with
        those of the frames the reference decodes."""
        out = DecodedBatch({}, [], [], [], [])
        cols = native.batch_columns(batch)
        if cols is None:
            for i, (frame, recv) in enumerate(batch.items()):
                self._reference(i, frame, recv, out, is_foreign)
            return out
        out.tables = {"quotes": cols.quotes, "book_changes": cols.book_changes}
        self._check_books(batch, cols.book, cols.leftover, out, is_foreign)
        return out

    def _check_books(
        self, batch: FrameBatch, msgs: native.BookMessages, left: list[int], out: DecodedBatch,
        is_foreign: Callable[[bytes], bool],
    ) -> None:
        """The book messages of a batch through ``BookSequence.check`` in frame order, with
        the reference-decoded frames (``left``) in between. A message continuing the
        previous message of its instrument in the batch (``BookMessages.continues``) leaves
        the chain as ``check`` would (``BookSequence.advance``), so runs of them are not
        fed one by one: only the rest are, each after its instrument's state is brought up
        to its predecessor, and every instrument's state to its last message at the end.
        That holds while every message fed moved its chain to its own ``change_id``; after
        one that did not (a duplicate) every later message is fed. Of the messages fed, the
        first change of each instrument in the batch that continues the instrument's chain
        goes through ``BookSequence.continue_chains`` in one pass (no gap can come of it,
        and no other instrument's chain depends on it). Batches where a reference-decoded
        frame may hold a book message are fed whole."""
        books = self._books
        check, advance = books.check, books.advance
        gaps = out.gaps
        n = len(msgs)
        frames = msgs.frame
        il, nl = 0, len(left)
        bulk = bool(n) and not any(b"book" in batch.frame(i) for i in left)
        pred: np.ndarray[Any, np.dtype[np.intp]] | None = None
        if bulk:
            skipped, pred_arr, last = msgs.continues()
            pred = pred_arr
            feed = ~skipped
            first = np.flatnonzero(feed & (pred_arr < 0) & msgs.prev_valid & ~msgs.snapshot)
            if len(first):
                rest = books.continue_chains(
                    [msgs.strings[k] for k in msgs.inst[first].tolist()], msgs.prev_change_id[first].tolist(),
                    msgs.change_id[first].tolist(), msgs.ts_us[first].tolist(),
                )
                moved = np.ones(len(first), np.bool_)
                moved[rest] = False
                feed[first[moved]] = False
            todo = np.flatnonzero(feed).tolist()
        else:
            skipped, last = np.zeros(n, np.bool_), np.zeros(0, np.intp)
            todo = list(range(n))
        names, cids, tss = msgs.strings, msgs.change_id, msgs.ts_us
        inst = msgs.inst
        t = 0
        while t < len(todo):
            j = todo[t]
            t += 1
            frame_no = int(frames[j])
            while il < nl and left[il] < frame_no:
                i = left[il]
                self._reference(i, batch.frame(i), batch.recv(i), out, is_foreign)
                il += 1
            if pred is not None:
                p = int(pred[j])
                if p >= 0 and skipped[p]:
                    advance(names[inst[p]], int(cids[p]), int(tss[p]))
                    skipped[p] = False
            ids = msgs.ids(j)
            gaps.extend(check(ids))
            if bulk and books.last_change_id(ids.instrument) != ids.change_id:
                bulk = False  # a duplicate: from here on, every message is fed
                skipped[j + 1 :] = False
                todo, t = list(range(j + 1, n)), 0
        at = last[skipped[last]]
        if len(at):
            books.advance_many([names[k] for k in inst[at].tolist()], cids[at].tolist(), tss[at].tolist())
        for i in left[il:]:
            self._reference(i, batch.frame(i), batch.recv(i), out, is_foreign)

    def _reference(
        self, i: int, frame: bytes, recv_ts_us: int, out: DecodedBatch, is_foreign: Callable[[bytes], bool]
    ) -> None:
        if is_foreign(frame):
            out.foreign.append(i)
            return
        d = self.decode(frame, recv_ts_us)
        if d.events:
            out.events.append((i, d.events))
        if d.gaps:
            out.gaps.extend(d.gaps)
        if d.malformed is not None:
            out.malformed.append(d.malformed)


def channel_label(frame: bytes) -> str:
    """The ``channel`` label of a raw frame, from a cheap look at its bytes."""
    i = frame.find(b'"channel":"')
    if i >= 0:
        j = i + 11
        head = frame[j : j + 24]
        if head.startswith(b"ticker.") or head.startswith(b"quote."):
            return "ticker"
        if head.startswith(b"book."):
            return "book"
        if head.startswith(b"trades."):
            return "trades"
        if head.startswith(b"deribit_price_index."):
            return "index"
        if head.startswith(b"instrument."):
            return "instrument_state"
        if head.startswith(b"platform_state"):
            return "platform_state"
        return "other"
    if b'"method":"heartbeat"' in frame:
        return "heartbeat"
    if b'"id":' in frame or b'"result":' in frame or b'"error":' in frame:
        return "rpc"
    return "other"


class DeribitVenue:
    """See the module docstring. ``ws_url`` overrides ``deribit.ws_url`` (a simulator):
    the REST and history endpoints are then derived from it."""

    name: Final = NAME
    display_name: Final = "Deribit"
    live_states: Final = LIVE_STATES

    def __init__(self, settings: DeribitSettings, ws_url: str | None = None) -> None:
        self.settings = settings
        if ws_url is None:
            self.ws_url = settings.ws_url
            self.rest_url = settings.rest_url
            self.history_url = settings.history_url
        else:
            self.ws_url = ws_url
            self.rest_url = self.history_url = rest_url_of_ws(ws_url)
        self.plan = ChannelPlan.from_settings(settings)
        self.policy = ConnectionPolicy(
            subscribe_rate_per_s=settings.subscribe_rate_per_s,
            reconnects_per_s=settings.reconnects_per_s,
            reconnect_min_s=settings.reconnect_min_s,
            reconnect_max_s=settings.reconnect_max_s,
            reconcile_interval_s=settings.reconcile_interval_s,
            liquid_instruments=tuple(settings.liquid_instruments),
        )

    def new_session(self, connection: str, subscribe_limiter: TokenBucket | None) -> DeribitSession:
        return DeribitSession(SessionConfig.from_settings(self.settings, connection), subscribe_limiter)

    async def fetch_instruments(self, client: httpx.AsyncClient) -> list[FetchedInstruments]:
        s = self.settings
        return await fetch_instruments(client, self.rest_url, s.currencies, s.kinds)

    async def history_trades(self, client: httpx.AsyncClient, window: TradeWindow) -> list[TradeTick]:
        s = self.settings
        return await history_trades(client, self.history_url, s.currencies, s.kinds, window)

    def rows_of_frame(self, frame: bytes, recv_ts_us: int) -> Rows:
        return rows_of_frame(frame, recv_ts_us)

    def replay_decoder(self, connection: str) -> ReplayDecoder:
        return ReplayDecoder(connection)

    def channel_label(self, frame: bytes) -> str:
        return channel_label(frame)


def build(settings: Settings, ws_url: str | None = None) -> DeribitVenue:
    """The adapter for ``settings.deribit`` (``ws_url``: collect from a simulator there)."""
    return DeribitVenue(settings.deribit, ws_url)
