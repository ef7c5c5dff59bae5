"""A sans-I/O Deribit JSON-RPC session: frames in → events out, frames to send out.

One ``DeribitSession`` per WebSocket connection. It owns no socket and reads no clock:
the driver (an asyncio task with ``websockets``) passes every received text frame and
the current time in µs, and sends whatever ``data_to_send`` returns. Modelled on the
python-websockets protocol objects, and tested the same way, with literal frames.

Driver loop (sketch)::

    session = DeribitSession(SessionConfig.from_settings(settings.deribit, "c0"),
                             subscribe_limiter=shared_bucket)
    session.subscribe(channels)                      # desired set; survives reconnects
    # connected:
    session.connection_made(now_us())
    send_all(session.data_to_send(now_us()))         # set_heartbeat + subscribe batches
    for each received frame:
        seq = journal.append(frame, recv_us, "c0")   # journal first (docs/journal.md)
        for out in session.receive_frame(frame, recv_us):
            ...                                      # domain events → writer; signals → act
        send_all(session.data_to_send(now_us()))     # public/test replies, resubscribes
    every ~1 s: outs = session.poll(now_us()); send_all(session.data_to_send(now_us()))
    # disconnected (any reason, including ReconnectRequired):
    outs = session.connection_lost(now_us())         # opens the disconnect/stale gap
    sleep(backoff.next_delay_s()), reconnect through the global TokenBucket

Outputs of ``receive_frame``/``poll``/``connection_lost`` are domain events
(``QuoteTick``, ``TradeTick``, ``BookChange``, ``IndexTick``, ``InstrumentEvent``) and
session signals:

* ``Subscribed(channels)`` / ``Unsubscribed(channels)``: confirmed by the exchange;
* ``Rejected(channels, reason)``: the exchange refused channels (also a ``rejected``
  ``GapDetected`` per channel);
* ``GapDetected(gap, first_missing_seq, last_missing_seq)``: a gap opened
  (``gap.end_us is None``) or closed (same ``start_us``/``instrument``/``kind``, so the
  gaps table row is updated through its dedup key). Kinds and bounds:

  - ``disconnect`` / ``stale`` (instrument ``*``): opened by ``connection_lost`` with start
    = min(receive time, exchange ts) of the last notification (frames lost in the socket
    carry exchange timestamps older than the last receive time, and the backfill window
    starts at the gap start); closed by the first notification after the
    resubscribe (end = its receive time), status ``open`` = to be backfilled (trades)
    by the backfill job; ``stale`` when the loss followed a ``ReconnectRequired`` for
    silence;
  - ``book_seq``: exchange ts of the last good message → ts of the new snapshot, then
    ``unrecoverable``; the session queues an unsubscribe + subscribe of only that
    instrument's book channel;
  - ``trade_seq``: exchange ts of the trade before → the trade after, with the missing
    seq range, status ``open`` (backfill);
  - ``stale`` (one liquid instrument): last receive → the next receive, ``unrecoverable``;
  - ``rejected``: receive time of the refusal (+1 µs per further channel of the same
    answer, keeping gap keys unique), instrument = the channel's instrument or, for a
    channel about no single instrument, the channel name; closed (``resolved``) if a
    later subscribe is granted.
* ``ReconnectRequired(reason)``: close the socket and reconnect (silence, or error 10028);
* ``InstrumentsReceived(request_id, currency, kind, instruments)``: a ``get_instruments``
  answer (the discovery code diffs it and writes the rows it wants);
* ``RpcFailed(request_id, method, code, message)``: any other error response;
* ``Malformed`` (from ``tickarchive.venues.deribit.normalize``): a frame that could not be understood.

State across reconnects: the desired channel set, trade_seq tracking (so a trade gap
across a reconnect is detected) and the liquid-instrument set survive; book chains, the
confirmed channel set, pending requests and unsent frames do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from tickarchive.domain import (
    ALL_INSTRUMENTS,
    Gap,
    GapKind,
    GapStatus,
)
from tickarchive.pacing import TokenBucket
from tickarchive.venue import (
    GapDetected,
    InstrumentsReceived,
    Malformed,
    Output,
    ReconnectRequired,
    Rejected,
    RpcFailed,
    Subscribed,
    Unsubscribed,
)
from tickarchive.venues.deribit import native
from tickarchive.venues.deribit.normalize import Heartbeat, Notification, Response, parse_frame, parse_instruments
from tickarchive.venues.deribit.requests import Pending, RequestQueue
from tickarchive.venues.deribit.sequence import BookSequence, TradeSequence, sequenced_trades
from tickarchive.venues.deribit.session_config import SessionConfig, book_channel_of, instrument_of_channel

__all__ = ["DeribitSession", "SessionConfig", "book_channel_of", "instrument_of_channel"]

TOO_MANY_REQUESTS: Final = 10028
_SUBSCRIBE: Final = "public/subscribe"
_UNSUBSCRIBE: Final = "public/unsubscribe"
_ResultList = msgspec.json.Decoder(list[str])


# ---------------------------------------------------------------------------- session


class DeribitSession:
    """The protocol state of one connection. See the module docstring."""

    def __init__(self, config: SessionConfig, subscribe_limiter: TokenBucket | None = None) -> None:
        self.config = config
        self.connection = config.connection
        self._stale_conn_us = int(config.stale_connection_s * 1e6)
        self._stale_inst_us = int(config.stale_instrument_s * 1e6)
        self._requests = RequestQueue(subscribe_limiter)
        self._desired: set[str] = set()
        self._confirmed: set[str] = set()
        self._book_channel: dict[str, str] = {}
        """instrument → its book channel, for targeted resubscribes."""
        self._rejected_gaps: dict[str, Gap] = {}
        self.books = BookSequence(config.connection)
        self.trades = TradeSequence(config.connection)
        self.connected = False
        self._connected_us: int | None = None
        self._last_frame_us: int | None = None
        self._last_data_us: int | None = None
        self._last_exchange_us: int | None = None
        """Exchange ts of the last event of the last data notification on this connection."""
        self._open_conn_gap: Gap | None = None
        self._stale_reason: str | None = None
        self._liquid: set[str] = set()
        self._seen: dict[str, int] = {}
        self._stale_gaps: dict[str, Gap] = {}
        self.frames = 0
        self.notifications = 0

    # -- channel set ---------------------------------------------------------------

    @property
    def desired_channels(self) -> frozenset[str]:
        return frozenset(self._desired)

    @property
    def subscribed_channels(self) -> frozenset[str]:
        """Channels the exchange confirmed on the current connection."""
        return frozenset(self._confirmed)

    def subscribe(self, channels: Iterable[str]) -> None:
        """Add channels to the desired set (sent now if connected, else on connect)."""
        new = [c for c in channels if c not in self._desired]
        self._desired.update(new)
        for c in new:
            if c.startswith("book."):
                inst = instrument_of_channel(c)
                if inst is not None:
                    self._book_channel[inst] = c
        if self.connected and new:
            self._requests.queue_batches(_SUBSCRIBE, new, self.config.channels_per_request)

    def unsubscribe(self, channels: Iterable[str]) -> None:
        """Remove channels from the desired set (an expiry, a reshard)."""
        gone = [c for c in channels if c in self._desired]
        self._desired.difference_update(gone)
        for c in gone:
            inst = instrument_of_channel(c)
            if inst is not None and self._book_channel.get(inst) == c:
                del self._book_channel[inst]
        if self.connected and gone:
            self._requests.queue_batches(_UNSUBSCRIBE, gone, self.config.channels_per_request)

    def mark_liquid(self, instruments: Iterable[str]) -> None:
        """Instruments whose silence for ``stale_instrument_s`` is a ``stale`` gap."""
        self._liquid = set(instruments)
        for inst in list(self._seen):
            if inst not in self._liquid:
                del self._seen[inst]

    def forget_instrument(self, instrument: str) -> None:
        """Drop every per-instrument state of an expired/delisted instrument (book chain,
        last trade_seq, liveness); unsubscribe its channels separately."""
        self.books.forget(instrument)
        self.trades.forget(instrument)
        self._seen.pop(instrument, None)
        self._stale_gaps.pop(instrument, None)
        self._liquid.discard(instrument)

    def request_instruments(self, currency: str, kind: str | None = None, expired: bool = False) -> int:
        """Queue a ``public/get_instruments`` call; its answer is an ``InstrumentsReceived``.
        (Deribit allows 1 such request/s per IP: pace it in the caller.)"""
        params: dict[str, Any] = {"currency": currency, "expired": expired}
        if kind is not None:
            params["kind"] = kind
        return self._requests.send(
            "public/get_instruments", params, Pending("public/get_instruments", currency=currency, kind=kind)
        )

    # -- connection lifecycle ----------------------------------------------------------

    def connection_made(self, now_us: int) -> None:
        """The socket is open: queue ``set_heartbeat`` and the subscribe batches."""
        self.connected = True
        self._connected_us = now_us
        self._requests.clear()
        self._confirmed.clear()
        self._seen.clear()
        self.books.reset()
        interval = {"interval": self.config.heartbeat_interval_s}
        self._requests.send("public/set_heartbeat", interval, Pending("set_heartbeat"))
        if self._desired:
            self._requests.queue_batches(_SUBSCRIBE, sorted(self._desired), self.config.channels_per_request)

    def connection_lost(self, now_us: int) -> list[Output]:
        """The socket is gone (for any reason). Opens a ``disconnect`` (or ``stale``) gap
        from the last notification; it is closed by the first one after resubscribing."""
        out: list[Output] = []
        was = self.connected
        self.connected = False
        self._requests.clear()
        self._confirmed.clear()
        self.books.reset()
        last = self._last_data_us
        exch = self._last_exchange_us
        if last is not None and exch is not None and exch < last:
            last = exch
        if was and last is not None and self._open_conn_gap is None:
            stale = self._stale_reason
            kind = GapKind.STALE if stale else GapKind.DISCONNECT
            cause = stale if stale else "connection lost"
            self._open_conn_gap = Gap(kind, ALL_INSTRUMENTS, last, None, cause, self.connection, GapStatus.OPEN)
            out.append(GapDetected(self._open_conn_gap))
        self._stale_reason = None
        return out

    # -- output ------------------------------------------------------------------------

    def data_to_send(self, now_us: int) -> list[bytes]:
        """Frames to send now. Subscribe/unsubscribe calls are released as the shared
        limiter allows; ``next_send_us`` says when to call again."""
        return self._requests.data_to_send(now_us)

    def next_send_us(self, now_us: int) -> int | None:
        """When paced requests can go out (``None``: nothing waiting)."""
        return self._requests.next_send_us(now_us)

    # -- input ---------------------------------------------------------------------------

    def receive_frame(self, frame: bytes, now_us: int) -> list[Output]:
        """Process one received frame (already journaled). Never raises on bad input."""
        self.frames += 1
        self._last_frame_us = now_us
        if native.ENABLED:
            n = native.fast_notification(frame, now_us)
            if n is not None:
                return self._notification(n, now_us)
        o = parse_frame(frame, now_us)
        if type(o) is Notification:
            return self._notification(o, now_us)
        if type(o) is Heartbeat:
            if o.type == "test_request":
                self._requests.send("public/test", {}, Pending("public/test"))
            return []
        if type(o) is Response:
            return self._response(o, now_us)
        return [o]  # type: ignore[list-item]  # Malformed

    def _notification(self, n: Notification, now_us: int) -> list[Output]:
        self.notifications += 1
        self._last_data_us = now_us
        events = n.events
        if events:
            exch = getattr(events[-1], "ts_us", None)  # every notification event has one
            if exch is not None:
                self._last_exchange_us = exch
        out: list[Output] = events  # type: ignore[assignment]
        extra: list[Output] | None = None
        if self._open_conn_gap is not None:
            g = self._open_conn_gap
            self._open_conn_gap = None
            extra = [GapDetected(Gap(g.kind, g.instrument, g.start_us, now_us, g.cause, g.connection, g.status))]
        book = n.book
        if book is not None:
            gaps = self.books.check(book)
            if gaps:
                extra = extra or []
                for gap in gaps:
                    extra.append(GapDetected(gap))
                # the first break since the last snapshot asks for a fresh one; later breaks
                # before it arrives are reported but need no second resubscribe
                if gaps[0].end_us is None and self.books.open_gaps(book.instrument) == 1:
                    self._resubscribe_book(book.instrument, n.channel)
        elif n.channel.startswith("trades."):
            for ev in sequenced_trades(n.events):
                tg = self.trades.check(ev)
                if tg is not None:
                    extra = extra or []
                    extra.append(GapDetected(tg.gap, tg.first_missing_seq, tg.last_missing_seq))
        if self._liquid and n.events:
            inst = getattr(n.events[0], "instrument", None)
            if inst is not None and inst in self._liquid:
                self._seen[inst] = now_us
                sg = self._stale_gaps.pop(inst, None)
                if sg is not None:
                    extra = extra or []
                    extra.append(
                        GapDetected(
                            Gap(
                                sg.kind,
                                sg.instrument,
                                sg.start_us,
                                now_us,
                                sg.cause,
                                sg.connection,
                                GapStatus.UNRECOVERABLE,
                            )
                        )
                    )
        if extra:
            return [*out, *extra]
        return out

    def _resubscribe_book(self, instrument: str, channel: str) -> None:
        ch = self._book_channel.get(instrument, channel)
        if ch in self._desired and self.connected:
            self._requests.paced.append((_UNSUBSCRIBE, (ch,)))
            self._requests.paced.append((_SUBSCRIBE, (ch,)))

    def _response(self, r: Response, now_us: int) -> list[Output]:
        rid = r.id
        pending = self._requests.pending.pop(rid, None) if isinstance(rid, int) else None
        if pending is None:
            return [RpcFailed(rid, "?", 0, "response to an unknown request id")]
        method = pending.method
        err = r.error
        if method == _SUBSCRIBE:
            if err is not None:
                out = self._refused(pending.channels, f"error {err.code}: {err.message}", now_us)
                if err.code == TOO_MANY_REQUESTS:
                    out.append(ReconnectRequired(f"subscribe refused: too_many_requests ({err.code})"))
                return out
            return self._subscribed(pending.channels, r.result, now_us)
        if method == _UNSUBSCRIBE:
            if err is not None:
                return [RpcFailed(rid, method, err.code, err.message)]
            try:
                gone = _ResultList.decode(r.result) if r.result is not None else []
            except msgspec.DecodeError:
                gone = list(pending.channels)
            self._confirmed.difference_update(gone)
            return [Unsubscribed(tuple(gone))]
        if err is not None:
            out2: list[Output] = [RpcFailed(rid, method, err.code, err.message)]
            if err.code == TOO_MANY_REQUESTS:
                out2.append(ReconnectRequired(f"{method} refused: too_many_requests ({err.code})"))
            return out2
        if method == "public/get_instruments":
            got = parse_instruments(r.result or b"[]", now_us, r.server_us)
            if isinstance(got, Malformed):
                return [got]
            return [InstrumentsReceived(int(rid), pending.currency, pending.kind, got)]  # type: ignore[arg-type]
        return []  # set_heartbeat "ok", public/test

    def _subscribed(self, requested: tuple[str, ...], result: msgspec.Raw | None, now_us: int) -> list[Output]:
        try:
            granted = set(_ResultList.decode(result)) if result is not None else set()
        except msgspec.DecodeError:
            granted = set()
        out: list[Output] = []
        ok = granted & self._desired
        self._confirmed.update(ok)
        if ok:
            out.append(Subscribed(tuple(sorted(ok))))
            for ch in ok:
                g = self._rejected_gaps.pop(ch, None)
                if g is not None:
                    out.append(
                        GapDetected(
                            Gap(g.kind, g.instrument, g.start_us, now_us, g.cause, g.connection, GapStatus.RESOLVED)
                        )
                    )
                inst = instrument_of_channel(ch)
                if inst is not None and inst in self._liquid:
                    self._seen.setdefault(inst, now_us)
        refused = [c for c in requested if c not in granted]
        if refused:
            out.extend(self._refused(tuple(refused), "not in the subscribe result", now_us))
        return out

    def _refused(self, channels: tuple[str, ...], reason: str, now_us: int) -> list[Output]:
        out: list[Output] = [Rejected(channels, reason)]
        for i, ch in enumerate(channels):
            if ch in self._rejected_gaps:
                continue
            # one gap per channel; the gaps key is (start, instrument, kind), so channels of
            # one instrument refused together start 1 µs apart, and a channel that is not
            # about one instrument (trades.option.ETH.100ms) is named in full
            gap = Gap(
                GapKind.REJECTED,
                instrument_of_channel(ch) or ch,
                now_us + i,
                None,
                f"subscription to {ch} refused: {reason}",
                self.connection,
                GapStatus.OPEN,
            )
            self._rejected_gaps[ch] = gap
            out.append(GapDetected(gap))
        return out

    # -- timers ----------------------------------------------------------------------------

    def poll(self, now_us: int) -> list[Output]:
        """Stale checks; call about once a second."""
        out: list[Output] = []
        if not self.connected:
            return out
        if self._confirmed and self._stale_reason is None:
            since = max(self._last_data_us or 0, self._connected_us or 0)
            if now_us - since > self._stale_conn_us:
                self._stale_reason = f"no data for {(now_us - since) / 1e6:.1f} s while subscribed"
                out.append(ReconnectRequired(self._stale_reason))
        if self._liquid:
            limit = self._stale_inst_us
            for inst, seen in self._seen.items():
                if now_us - seen > limit and inst not in self._stale_gaps:
                    gap = Gap(
                        GapKind.STALE,
                        inst,
                        seen,
                        None,
                        f"liquid instrument silent for more than {self.config.stale_instrument_s:g} s",
                        self.connection,
                        GapStatus.OPEN,
                    )
                    self._stale_gaps[inst] = gap
                    out.append(GapDetected(gap))
        return out
