"""The native (Rust) fast path for ``ticker.*`` and ``book.{instrument}.{interval}`` frames.

``tickarchive_native.encode_frame`` (crate ``native/``) turns one such notification
straight into the QuestDB ILP protocol-v2 lines that ``store.ilp.IlpEncoder(2)`` writes
for the events ``tickarchive.venues.deribit.normalize.parse_frame`` makes of the same frame, byte for byte
(``tests/ingest/test_native.py``), plus the few facts the session needs. Anything else,
and anything it is not certain to reproduce exactly, gives ``None``: the caller then uses
the reference path::

    o = native.fast_notification(frame, recv_ts_us) or parse_frame(frame, recv_ts_us)

``AVAILABLE`` says whether the extension imported; ``ENABLED`` is ``AVAILABLE`` unless
the environment has ``TICKARCHIVE_NATIVE=0`` (A/B benchmarks, fallback tests), read at
import. When not enabled, ``fast_notification`` always returns ``None``.

For replay, ``columns`` decodes whole batches of frames into the columns of ``quotes`` and
``book_changes`` (``tickarchive_native.deribit_columns``: the same normalization, as Arrow
buffers), listing the frames it leaves to the reference parser; ``batch_columns`` takes
the columns ``tickarchive_native.TjzColumns`` decoded straight from a ``.tjz`` archive
file's values instead when the batch carries them (the same rows, without writing the
frames' JSON and parsing it again: docs/archive.md, "Replay speed").

``frame`` is ``bytes`` (what the journal holds); anything else (a ``str`` text frame,
``bytearray``) or a time outside ``0..2**63`` also gives ``None``: it never raises.
Measured per frame (one loaded core, synthetic 780-byte tickers / 300-byte books):
``encode_frame`` 1.8 / 1.2 µs, ``fast_notification`` 1.9 / 1.4 µs, the same wrapper in
Python (``_with_tuple``) 2.2 / 1.7 µs; ``parse_frame`` alone (no ILP) 3.2 / 2.9 µs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, cast

import numpy as np
import pyarrow as pa

from tickarchive import native_ext, rows
from tickarchive.domain import BookAction, EncodedRows, Side
from tickarchive.tables import BOOK_CHANGES, QUOTES, ColumnType, Table
from tickarchive.venue import ORD_COLUMN, FrameBatch
from tickarchive.venues.deribit.normalize import Notification
from tickarchive.venues.deribit.sequence import BookIds

_log = logging.getLogger(__name__)

_Encoded = tuple[str, str, bytes, int, str, int, int | None, int | None, bool | None]
_FastNotification = Callable[[bytes, int], Notification | None]

_ext: ModuleType | None = native_ext.EXT

AVAILABLE: Final = _ext is not None
"""The extension imported."""

ENABLED: Final = AVAILABLE and not native_ext.SWITCHED_OFF
"""``AVAILABLE`` and not switched off with ``TICKARCHIVE_NATIVE=0``."""


def _disabled(frame: bytes, recv_ts_us: int) -> Notification | None:
    return None


def _with_tuple(encode_frame: Callable[[bytes, int], _Encoded | None]) -> _FastNotification:
    """``fast_notification`` in Python over ``encode_frame`` (what the extension's own
    ``fast_notification`` does without a Python frame; kept as the readable definition
    and checked against it in the tests)."""

    def fast_notification(frame: bytes, recv_ts_us: int) -> Notification | None:
        t = encode_frame(frame, recv_ts_us)
        if t is None:
            return None
        channel, table, payload, rows, instrument, ts_us, change_id, prev, snap = t
        events: Any
        if change_id is None:  # ticker
            events = [EncodedRows(table, payload, rows, instrument, ts_us)]
            return Notification(channel, events)
        events = [EncodedRows(table, payload, rows, instrument, ts_us)] if rows else []
        return Notification(channel, events, BookIds(instrument, ts_us, change_id, prev, snap is True))

    return fast_notification


fast_notification: _FastNotification = _disabled
"""``fast_notification(frame, recv_ts_us)``: a ``Notification`` whose ``events`` are one
``EncodedRows`` (none for an empty book) and whose ``book`` is the ``BookIds`` of a book
frame, or ``None`` (use ``parse_frame``). The extension builds the objects itself (no
Python frame on the hot path: ~0.3 µs less per frame than ``_with_tuple``)."""

if _ext is not None:
    _ext.set_types(Notification, EncodedRows, BookIds)
    if ENABLED:
        fast_notification = _ext.fast_notification


# ---------------------------------------------------------------------------- replay columns

_QUOTE_SYMBOLS: Final = ("instrument", "underlying_index", "state")
_SIDES: Final = pa.array([Side.BID.value, Side.ASK.value])
_ACTIONS: Final = pa.array([a.value for a in (BookAction.NEW, BookAction.CHANGE, BookAction.DELETE,
                                              BookAction.SNAPSHOT, BookAction.EMPTY)])
_TS: Final = pa.timestamp("us", tz="UTC")


def _schema(table: Table) -> pa.Schema:
    return rows.arrow_schema(table).append(pa.field(ORD_COLUMN, pa.uint64(), nullable=False))


QUOTES_SCHEMA: Final = _schema(QUOTES)
BOOK_SCHEMA: Final = _schema(BOOK_CHANGES)


def _buf(data: bytes) -> pa.Buffer:
    return pa.py_buffer(data)


def _arr(typ: pa.DataType, n: int, data: bytes, valid: bytes | None = None) -> pa.Array:
    return pa.Array.from_buffers(typ, n, [None if valid is None else _buf(valid), _buf(data)])


_Bools = np.ndarray[Any, np.dtype[np.bool_]]
_Indices = np.ndarray[Any, np.dtype[np.intp]]


@dataclass(frozen=True, slots=True)
class BookMessages:
    """The ids of every natively decoded book message of a batch (empty books included),
    in frame order, as arrays: message ``i`` is in frame ``frame[i]``."""

    strings: list[str]
    frame: np.ndarray[Any, np.dtype[np.uint32]]
    inst: np.ndarray[Any, np.dtype[np.int32]]
    """Index into ``strings`` (one per instrument name in the batch)."""
    ts_us: np.ndarray[Any, np.dtype[np.int64]]
    change_id: np.ndarray[Any, np.dtype[np.int64]]
    prev_change_id: np.ndarray[Any, np.dtype[np.int64]]
    prev_valid: np.ndarray[Any, np.dtype[np.bool_]]
    snapshot: np.ndarray[Any, np.dtype[np.bool_]]

    def __len__(self) -> int:
        return len(self.frame)

    def ids(self, i: int) -> BookIds:
        return BookIds(
            self.strings[self.inst[i]],
            int(self.ts_us[i]),
            int(self.change_id[i]),
            int(self.prev_change_id[i]) if self.prev_valid[i] else None,
            bool(self.snapshot[i]),
        )

    def continues(self) -> tuple[_Bools, _Indices, _Indices]:
        """(continues, pred, last): per message the previous message of its instrument in
        this batch (-1: none), and whether it is a change (not a snapshot) whose
        ``prev_change_id`` is that message's ``change_id``; the index of the last message
        of each instrument (one sort for the three)."""
        n = len(self.inst)
        cont = np.zeros(n, np.bool_)
        pred = np.full(n, -1, np.intp)
        if n < 2:
            return cont, pred, np.arange(n, dtype=np.intp)
        order = np.argsort(self.inst, kind="stable")
        same = self.inst[order[1:]] == self.inst[order[:-1]]
        at, before = order[1:][same], order[:-1][same]
        pred[at] = before
        cont[at] = (self.change_id[before] == self.prev_change_id[at]) & self.prev_valid[at] & ~self.snapshot[at]
        last = order[np.append(~same, True)]
        return cont, pred, last


@dataclass(frozen=True, slots=True)
class Columns:
    """``columns``' result: rows of the natively decoded frames, the ids of their book
    messages in frame order, and the frames left to the reference parser."""

    quotes: pa.Table
    book_changes: pa.Table
    book: BookMessages
    leftover: list[int]


def _native_columns() -> Callable[[bytes, bytes, bytes, bytes], Any] | None:
    fn = native_ext.enabled("deribit_columns")
    if fn is None:
        return None
    expected = [c.name for c in QUOTES.columns if c.type is ColumnType.DOUBLE]
    got = [name for name, _, _ in fn(b"", b"", b"", b"")[1][7]]
    if got != expected:  # the native parser and the table registry disagree: reference path only
        _log.warning("native replay columns %s differ from the quotes table %s: using the reference parser", got,
                     expected)
        return None
    return cast(Callable[[bytes, bytes, bytes, bytes], Any], fn)


_COLUMNS: Final = _native_columns()
COLUMNS_ENABLED: Final = _COLUMNS is not None
"""The native column decoder is there, switched on and agrees with the table registry."""


def columns(buf: bytes, starts: bytes, ends: bytes, recv_ts_us: bytes) -> Columns | None:
    """The ticker and book frames of a batch decoded natively into ``quotes`` and
    ``book_changes`` rows (``QUOTES_SCHEMA``/``BOOK_SCHEMA``: the tables' Arrow schemas plus
    ``ORD_COLUMN``), exactly the rows ``parse_frame`` makes of them; every other frame (and
    any the fast path is not certain of) in ``leftover``. ``None`` without the extension."""
    if _COLUMNS is None:
        return None
    return _wrap(_COLUMNS(buf, starts, ends, recv_ts_us))


def batch_columns(batch: FrameBatch) -> Columns | None:
    """``columns`` of a batch, or the columns the native ``.tjz`` reader decoded while
    reading it (``FrameBatch.columns``: the same rows, ``tickarchive_native.TjzColumns``)."""
    if batch.columns is not None:
        if _COLUMNS is None:  # unreachable: such batches go only to decoders with tjz_columns
            raise ValueError("a batch comes decoded into native columns, but the native column decoder is off")
        return _wrap(batch.columns)
    return columns(batch.buf, batch.starts, batch.ends, batch.recv_ts_us)


def _wrap(raw: Any) -> Columns:
    """``Columns`` of ``deribit_columns``' tuple."""
    strings, q, b, bf, left = raw
    names = pa.array(strings, pa.string())
    n = q[0]
    qcols: dict[str, pa.Array] = {
        "ts": _arr(_TS, n, q[2]),
        "recv_ts": _arr(_TS, n, q[3]),
        "instrument": names.take(_arr(pa.int32(), n, q[4])),
        "underlying_index": names.take(_arr(pa.int32(), n, q[5][0], q[5][1])),
        "state": names.take(_arr(pa.int32(), n, q[6][0], q[6][1])),
        "combo_state": names.take(_arr(pa.int32(), n, q[8][0], q[8][1])),
        "channel_interval": names.take(_arr(pa.int32(), n, q[9][0], q[9][1])),
        ORD_COLUMN: _arr(pa.uint64(), n, q[1]),
    }
    for name, data, valid in q[7]:
        col = _arr(pa.float64(), n, data, valid)
        # a column of NULLs only (another instrument kind's field) shares one buffer
        qcols[name] = rows.null_column(pa.float64(), n) if col.null_count == n else col
    quotes = pa.Table.from_arrays([qcols[f.name] for f in QUOTES_SCHEMA], schema=QUOTES_SCHEMA)
    m = b[0]
    bcols = {
        "ts": _arr(_TS, m, b[2]),
        "recv_ts": _arr(_TS, m, b[3]),
        "instrument": names.take(_arr(pa.int32(), m, b[4])),
        "change_id": _arr(pa.int64(), m, b[5]),
        "prev_change_id": _arr(pa.int64(), m, b[6][0], b[6][1]),
        "is_snapshot": _arr(pa.bool_(), m, b[7]),
        "side": _SIDES.take(_arr(pa.int32(), m, b[8])),
        "action": _ACTIONS.take(_arr(pa.int32(), m, b[9])),
        "price": _arr(pa.float64(), m, b[10]),
        "amount": _arr(pa.float64(), m, b[11][0]),
        "channel_interval": names.take(_arr(pa.int32(), m, b[11][1], b[11][2])),
        ORD_COLUMN: _arr(pa.uint64(), m, b[1]),
    }
    book = pa.Table.from_arrays([bcols[f.name] for f in BOOK_SCHEMA], schema=BOOK_SCHEMA)
    k = bf[0]
    prev_valid = np.ones(k, np.bool_) if bf[5][1] is None else np.unpackbits(
        np.frombuffer(bf[5][1], np.uint8), count=k, bitorder="little"
    ).astype(np.bool_)
    msgs = BookMessages(
        strings,
        np.frombuffer(bf[1], np.uint32),
        np.frombuffer(bf[2], np.int32),
        np.frombuffer(bf[3], np.int64),
        np.frombuffer(bf[4], np.int64),
        np.frombuffer(bf[5][0], np.int64),
        prev_valid,
        np.frombuffer(bf[6], np.uint8).astype(np.bool_),
    )
    return Columns(quotes, book, msgs, list(memoryview(left).cast("I")))
