"""Replay: raw frames (journal segments, journal archive files, journal exports, recorded
captures) → every table, again (docs/journal.md, "Replay").

The same parsers as the live collector, so a parser fix is applied to old data by
replaying it: the venue's replay decoder (``tickarchive.venue.ReplayDecoder``) decodes
batches of frames, the bulk of them natively straight into columns (the Deribit ticker
and book fast path), the rest through the reference parser. Inputs:
``tickarchive.ingest.replay_input``. Outputs:

* ``ParquetSink(directory)`` (``tickarchive.ingest.replay_parquet``):
  ``DIR/<table>.parquet`` per table with ``tickarchive.rows.arrow_schema``, sorted like
  the archive and deduplicated like QuestDB (equal dedup keys: the row read last wins);
* ``QuestDBSink(conf)``: ILP over HTTP through ``store.ilp`` (one transaction per table
  per flush; QuestDB deduplicates).

Besides the market tables, replay re-derives the ``book_seq`` and ``trade_seq`` gaps
visible in the frames (connection ``replay``). A journal holds the collector's side
records too (``tickarchive.ingest.journal.side``): every gap row it wrote (disconnect,
stale, downtime, rejected, and the sequence gaps with their final status) and the trades
its backfills inserted; replay writes them as they are. Gaps are written once per key
(start, instrument, kind), the last version read, a journaled one over a re-derived one.

Damage (unreadable lines, journal records failing their CRC, a torn segment end) is
skipped and counted per file in ``ReplayStats.damaged_files``; the CLI turns it into a
non-zero exit unless ``--accept-damage``.
"""

from __future__ import annotations

import collections
import gc
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from tickarchive import rows
from tickarchive import tables as t
from tickarchive.domain import Event, Gap
from tickarchive.ingest.errors import ReplayError
from tickarchive.ingest.journal.side import SIDE_PREFIX, decode_side
from tickarchive.ingest.replay_input import InputStats, read_batches
from tickarchive.ingest.replay_parquet import ParquetSink as _ParquetSink
from tickarchive.ingest.replay_parquet import with_ord_schema
from tickarchive.store.ilp import IlpEncoder
from tickarchive.venue import ORD_COLUMN, ORD_ROW_BITS, FrameBatch, Malformed, ReplayDecoder, Venue

REPLAY_CONNECTION = "replay"
OUTPUT_TABLES: tuple[t.Table, ...] = (*t.MARKET_TABLES, t.GAPS)


# ---------------------------------------------------------------------------- arrow


def _column_getters(table: t.Table, cls: type) -> list[tuple[str, int]]:
    fields = [f.name for f in msgspec.structs.fields(cls)]
    return [(col, fields.index(f)) for col, f in rows.field_of_column(table).items()]


_GETTERS: dict[type, list[tuple[str, int]]] = {
    cls: _column_getters(tbl, cls) for cls, tbl in rows.TABLE_OF_EVENT.items()
}


def events_to_arrow(table: t.Table, events: Sequence[Event]) -> pa.Table:
    """Same result as ``tickarchive.rows.events_to_arrow``, transposed in C (fast)."""
    schema = rows.arrow_schema(table)
    if not events:
        return schema.empty_table()
    getters = _GETTERS[type(events[0])]
    columns = list(zip(*(msgspec.structs.astuple(e) for e in events), strict=True))
    arrays = []
    for (_col, idx), fld in zip(getters, schema, strict=True):
        values: Any = columns[idx]
        if pa.types.is_string(fld.type):  # enums (Side, GapKind, ...) as their text
            values = [v if v is None or type(v) is str else str(v) for v in values]
        arrays.append(pa.array(values, type=fld.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _with_ord(table: t.Table, events: Sequence[Event], ords: Sequence[int]) -> pa.Table:
    data = events_to_arrow(table, events)
    return pa.Table.from_arrays([*data.columns, pa.array(ords, pa.uint64())], schema=with_ord_schema(table))


# ---------------------------------------------------------------------------- sinks


class Sink(Protocol):
    columnar: bool
    """True: takes Arrow tables (``add``); False: takes events (``add_events``)."""

    def add(self, table: t.Table, data: pa.Table) -> None:
        """Rows with ``with_ord_schema(table)`` (columnar sinks)."""
        ...

    def add_events(self, table: t.Table, events: list[Event]) -> None:
        """Rows as events, in input order (event sinks)."""
        ...

    def close(self) -> dict[str, int]:
        """Finish; return rows written per table."""
        ...

    def abort(self) -> None: ...


class ParquetSink(_ParquetSink):
    """``DIR/<table>.parquet`` for every output table (see ``replay_parquet``)."""

    def __init__(self, directory: Path, tables: Sequence[t.Table] = OUTPUT_TABLES, **options: int) -> None:
        super().__init__(directory, tables, **options)

    def add_events(self, table: t.Table, events: list[Event]) -> None:
        raise ReplayError("ParquetSink takes Arrow tables")


class QuestDBSink:
    """ILP/HTTP into QuestDB: ``conf`` is a client configuration string such as
    ``http::addr=127.0.0.1:19000;``. Flushes a table's buffer every ``flush_rows`` rows,
    one transaction per flush."""

    columnar = False

    def __init__(self, conf: str, flush_rows: int = 50_000) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from questdb.ingress import IngressError, Sender

        self._error: type[Exception] = IngressError
        try:
            self._sender = Sender.from_conf(conf)
            self._sender.establish()  # type: ignore[no-untyped-call]
        except IngressError as exc:
            raise ReplayError(f"cannot connect to QuestDB ({conf}): {exc}") from exc
        self._encoder = IlpEncoder(protocol_version=int(self._sender.protocol_version))
        self._flush_rows = flush_rows
        self._rows: dict[str, int] = collections.Counter()

    def add(self, table: t.Table, data: pa.Table) -> None:
        raise ReplayError("QuestDBSink takes events")

    def add_events(self, table: t.Table, events: list[Event]) -> None:
        self._encoder.add_all(events)
        if self._encoder.rows[table.name] >= self._flush_rows:
            self._flush()

    def _flush(self) -> None:
        for name, (buf, n) in self._encoder.take().items():
            try:
                self._sender.flush(buf, transactional=True)
            except self._error as exc:
                raise ReplayError(f"QuestDB refused {n} rows of {name}: {exc}") from exc
            self._rows[name] += n

    def close(self) -> dict[str, int]:
        try:
            self._flush()
        finally:
            self._sender.close()
        return dict(self._rows)

    def abort(self) -> None:
        self._sender.close()


# ---------------------------------------------------------------------------- replay


@dataclass(slots=True)
class ReplayStats:
    files: int = 0
    frames: int = 0
    skipped_lines: int = 0
    unreadable_lines: int = 0
    damaged_records: int = 0
    """Journal records skipped because their CRC does not match."""
    torn_bytes: int = 0
    """Bytes after the last whole record of a journal segment (unread)."""
    damaged_files: list[str] = field(default_factory=list)
    """One line per damaged input file, saying what was skipped where."""
    malformed: collections.Counter[str] = field(default_factory=collections.Counter)
    malformed_samples: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    """Rows written per table."""
    duplicates: dict[str, int] = field(default_factory=dict)
    """Rows replaced by a later row with the same dedup key (Parquet output)."""

    @property
    def damaged(self) -> bool:
        return bool(self.damaged_files)


def _is_side(frame: bytes) -> bool:
    return frame.startswith(SIDE_PREFIX)


class Replayer:
    """Feeds frames through the venue's decoder into a sink, batching rows per table."""

    def __init__(self, sink: Sink, decoder: ReplayDecoder, batch_rows: int = 100_000) -> None:
        self.sink = sink
        self._decoder = decoder
        self.stats = ReplayStats()
        self._batch_rows = batch_rows
        self._events: dict[type, list[Event]] = {cls: [] for cls in rows.TABLE_OF_EVENT}
        self._ords: dict[type, list[int]] = {cls: [] for cls in rows.TABLE_OF_EVENT}
        self._gaps: dict[tuple[int, str, str, str], Gap] = {}
        """Gap rows by dedup key (start, instrument, kind, connection), written at ``finish``
        (the last version of each)."""
        self._journaled_gaps: set[tuple[int, str, str]] = set()
        self._frame_no = 0
        """Frames fed so far (the input order of every row: ``ORD_COLUMN``)."""

    def _gap(self, g: Gap, journaled: bool) -> None:
        seen = (g.start_us, g.instrument, g.kind.value)
        if journaled:
            if seen not in self._journaled_gaps:
                self._journaled_gaps.add(seen)
                # the collector's own version (its connection, its final status) replaces
                # the one replay re-derived from the frames (connection ``replay``)
                self._gaps.pop((*seen, REPLAY_CONNECTION), None)
        elif seen in self._journaled_gaps:
            return
        self._gaps[(*seen, g.connection)] = g

    def _emit(self, frame_no: int, events: Iterable[Event]) -> None:
        evs, ords = self._events, self._ords
        base = frame_no << ORD_ROW_BITS
        for k, ev in enumerate(events):
            cls = type(ev)
            b = evs[cls]
            b.append(ev)
            ords[cls].append(base | k)
            if len(b) >= self._batch_rows:
                self._hand_over(cls)

    def _hand_over(self, cls: type) -> None:
        events, ords = self._events[cls], self._ords[cls]
        if not events:
            return
        table = rows.TABLE_OF_EVENT[cls]
        if self.sink.columnar:
            self.sink.add(table, _with_ord(table, events, ords))
        else:
            self.sink.add_events(table, events)
        self._events[cls] = []
        self._ords[cls] = []

    def _malformed(self, bad: Malformed) -> None:
        self.stats.malformed[bad.key] += 1
        self.stats.malformed_samples.setdefault(bad.key, bad.sample)

    def _side(self, frame_no: int, frame: bytes) -> None:
        side = decode_side(frame)
        assert side is not None
        if not side:
            self.stats.malformed["invalid_side_record"] += 1
            self.stats.malformed_samples.setdefault("invalid_side_record", frame[:200])
        others = []
        for ev in side:
            if type(ev) is Gap:
                self._gap(ev, journaled=True)
            else:
                others.append(ev)
        self._emit(frame_no, others)

    def feed(self, frame: bytes, recv_ts_us: int) -> None:
        """One frame (the reference path, frame by frame)."""
        frame_no = self._frame_no
        self._frame_no += 1
        self.stats.frames += 1
        if _is_side(frame):
            self._side(frame_no, frame)
            return
        d = self._decoder.decode(frame, recv_ts_us)
        if d.events:
            self._emit(frame_no, d.events)
        for g in d.gaps:
            self._gap(g, journaled=False)
        if d.malformed is not None:
            self._malformed(d.malformed)

    def feed_batch(self, batch: FrameBatch) -> None:
        """A batch of frames, the bulk decoded natively into columns (columnar sinks)."""
        if not self.sink.columnar:
            for frame, recv in batch.items():
                self.feed(frame, recv)
            return
        base = self._frame_no
        self._frame_no += len(batch)
        self.stats.frames += len(batch)
        out = self._decoder.decode_batch(batch, _is_side)
        shift = base << ORD_ROW_BITS
        for name, data in out.tables.items():
            if data.num_rows:
                if shift:
                    at = data.schema.get_field_index(ORD_COLUMN)
                    ords = pc.add(data.column(at), pa.scalar(shift, pa.uint64()))
                    data = data.set_column(at, data.schema.field(at), ords)
                self.sink.add(t.table(name), data)
        for i, events in out.events:
            self._emit(base + i, events)
        for g in out.gaps:
            self._gap(g, journaled=False)
        for bad in out.malformed:
            self._malformed(bad)
        for i in out.foreign:
            self._side(base + i, batch.frame(i))

    def finish(self) -> ReplayStats:
        self._emit(self._frame_no, self._gaps.values())
        self._gaps = {}
        for cls in rows.TABLE_OF_EVENT:
            self._hand_over(cls)
        rows_in = self.sink.rows_in() if isinstance(self.sink, _ParquetSink) else None
        self.stats.rows = self.sink.close()
        if rows_in is not None:
            self.stats.duplicates = {k: n - self.stats.rows.get(k, 0) for k, n in rows_in.items()}
        return self.stats


def replay_files(
    paths: Sequence[Path],
    sink: Sink,
    venue: Venue,
    on_progress: Callable[[Path, int], None] | None = None,
    batch_rows: int = 100_000,
) -> ReplayStats:
    """Replay every file in order into ``sink``. ``on_progress(path, bytes_read)`` is
    called after every batch. Raises ``CaptureError``/``ReplayError``; the sink is
    aborted (no partial output) on any error. Damage in the inputs is skipped and
    reported in the stats (``ReplayStats.damaged``)."""
    decoder = venue.replay_decoder(REPLAY_CONNECTION)
    rp = Replayer(sink, decoder, batch_rows)
    st = rp.stats
    columns = sink.columnar and decoder.tjz_columns
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short-lived acyclic objects: the cycle collector only costs time
    pool = pa.default_memory_pool()
    # Arrow's default pool (mimalloc) gives the pages of every freed batch back to the
    # kernel and faults them in again for the next: with malloc's pool replay spends
    # about half the system time (docs/archive.md, "Replay speed")
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        for path in paths:
            info = InputStats(path)
            for batch in read_batches(path, info, columns=columns):
                rp.feed_batch(batch)
                if on_progress is not None:
                    on_progress(path, info.bytes_read)
            if on_progress is not None:
                on_progress(path, info.bytes_read)
            st.files += 1
            st.skipped_lines += info.skipped
            st.unreadable_lines += info.unreadable
            st.damaged_records += info.damaged_records
            st.torn_bytes += info.torn_bytes
            if info.damaged:
                st.damaged_files.append(info.describe_damage())
        return rp.finish()
    except BaseException:
        sink.abort()
        raise
    finally:
        pa.set_memory_pool(pool)
        if gc_was_on:
            gc.enable()
