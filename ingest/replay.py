"""Replay: raw frames (journal export or a recorded capture) → every table, again.

The same parsers as the live collector (``tickarchive.venues.deribit.normalize.parse_frame``), so a parser
fix is applied to old data by replaying it. Outputs:

* ``ParquetSink(directory)``: ``DIR/<table>.parquet`` per table with
  ``tickarchive.rows.arrow_schema`` (written in batches, renamed into place only when
  complete, so a failed replay never leaves half a file behind), deduplicated on the
  table's dedup keys as QuestDB's upsert keys would (the last row of a key wins: a frame
  received twice, a book notification Deribit sent twice); the deduplication holds one
  table in memory at a time;
* ``QuestDBSink(conf)``: ILP over HTTP through ``store.ilp`` (one transaction per table
  per flush).

Besides the market tables, replay re-derives the ``book_seq`` and ``trade_seq`` gaps
visible in the frames (connection ``replay``). A journal export also holds the
collector's side records (``tickarchive.ingest.journal.side``): every gap row it wrote (disconnect,
stale, downtime, rejected, and the sequence gaps with their final status) and the trades
its backfills inserted; replay writes them as they are. Gaps are written once per key
(start, instrument, kind), the last version read, a journaled one over a re-derived one.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickarchive import rows
from tickarchive import tables as t
from tickarchive.domain import Event, Gap
from tickarchive.ingest.errors import ReplayError
from tickarchive.ingest.journal.capture import CaptureRecord, read_capture
from tickarchive.ingest.journal.side import decode_side
from tickarchive.store.ilp import IlpEncoder
from tickarchive.venue import ReplayDecoder, Venue

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


# ---------------------------------------------------------------------------- sinks


class Sink(Protocol):
    def add(self, table: t.Table, events: list[Event]) -> None: ...

    def close(self) -> dict[str, int]:
        """Finish; return rows written per table."""
        ...

    def abort(self) -> None: ...


class ParquetSink:
    """``DIR/<table>.parquet`` for every output table (empty tables included)."""

    def __init__(self, directory: Path, tables: Sequence[t.Table] = OUTPUT_TABLES) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReplayError(f"cannot create output directory {directory}: {exc.strerror}") from exc
        self._tables = {tbl.name: tbl for tbl in tables}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows = dict.fromkeys(self._tables, 0)
        self.duplicates = dict.fromkeys(self._tables, 0)
        """Rows dropped per table at ``close`` because a later row had the same dedup key."""

    def _tmp(self, name: str) -> Path:
        return self.directory / f".{name}.parquet.partial"

    def add(self, table: t.Table, events: list[Event]) -> None:
        if not events:
            return
        try:
            w = self._writers.get(table.name)
            if w is None:
                w = pq.ParquetWriter(self._tmp(table.name), rows.arrow_schema(table), compression="zstd")
                self._writers[table.name] = w
            w.write_table(events_to_arrow(table, events))
        except (OSError, pa.ArrowException) as exc:
            raise ReplayError(f"cannot write {table.name}.parquet in {self.directory}: {exc}") from exc
        self._rows[table.name] += len(events)

    def close(self) -> dict[str, int]:
        try:
            for name, tbl in self._tables.items():
                w = self._writers.pop(name, None)
                if w is None:
                    pq.write_table(rows.arrow_schema(tbl).empty_table(), self._tmp(name), compression="zstd")
                else:
                    w.close()
                    self._dedup(tbl)
                self._tmp(name).replace(self.directory / f"{name}.parquet")
        except (OSError, pa.ArrowException) as exc:
            raise ReplayError(f"cannot finish Parquet output in {self.directory}: {exc}") from exc
        return dict(self._rows)

    def _dedup(self, table: t.Table) -> None:
        """Keep the last row of every dedup key (QuestDB's upsert), in first-seen order of
        the rows kept; rewrite the file only when something was dropped."""
        path = self._tmp(table.name)
        data = pq.read_table(path)
        n = data.num_rows
        keys = list(table.dedup_keys)
        index = data.select(keys).append_column("__row", pa.array(range(n), type=pa.int64()))
        last = index.group_by(keys, use_threads=False).aggregate([("__row", "max")]).column("__row_max")
        if len(last) == n:
            return
        data = data.take(pc.take(last, pc.sort_indices(last)))
        pq.write_table(data, path, compression="zstd")
        self.duplicates[table.name] = n - data.num_rows
        self._rows[table.name] = data.num_rows

    def abort(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
        for name in self._tables:
            self._tmp(name).unlink(missing_ok=True)


class QuestDBSink:
    """ILP/HTTP into QuestDB: ``conf`` is a client configuration string such as
    ``http::addr=127.0.0.1:19000;``. Flushes a table's buffer every ``flush_rows`` rows,
    one transaction per flush."""

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

    def add(self, table: t.Table, events: list[Event]) -> None:
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
    malformed: collections.Counter[str] = field(default_factory=collections.Counter)
    malformed_samples: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


class Replayer:
    """Feeds records through the parsers into a sink, batching rows per table."""

    def __init__(self, sink: Sink, decoder: ReplayDecoder, batch_rows: int = 100_000) -> None:
        self.sink = sink
        self._decoder = decoder
        self.stats = ReplayStats()
        self._batch_rows = batch_rows
        self._batches: dict[type, list[Event]] = {cls: [] for cls in rows.TABLE_OF_EVENT}
        self._gaps: dict[tuple[int, str, str, str], Gap] = {}
        """Gap rows by dedup key (start, instrument, kind, connection), written at ``finish``
        (the last version of each)."""
        self._journaled_gaps: set[tuple[int, str, str]] = set()

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

    def _emit(self, events: Iterable[Event]) -> None:
        batches = self._batches
        for ev in events:
            b = batches[type(ev)]
            b.append(ev)
            if len(b) >= self._batch_rows:
                self.sink.add(rows.TABLE_OF_EVENT[type(ev)], b)
                batches[type(ev)] = []

    def feed(self, rec: CaptureRecord) -> None:
        st = self.stats
        st.frames += 1
        side = decode_side(rec.frame)
        if side is not None:
            if not side:
                st.malformed["invalid_side_record"] += 1
                st.malformed_samples.setdefault("invalid_side_record", rec.frame[:200])
            for ev in side:
                if type(ev) is Gap:
                    self._gap(ev, journaled=True)
                else:
                    self._emit((ev,))
            return
        d = self._decoder.decode(rec.frame, rec.recv_ts_us)
        if d.events:
            self._emit(d.events)
        for g in d.gaps:
            self._gap(g, journaled=False)
        bad = d.malformed
        if bad is not None:
            st.malformed[bad.key] += 1
            st.malformed_samples.setdefault(bad.key, bad.sample)

    def finish(self) -> ReplayStats:
        self._emit(self._gaps.values())
        self._gaps = {}
        for cls, b in self._batches.items():
            if b:
                self.sink.add(rows.TABLE_OF_EVENT[cls], b)
        self._batches = {cls: [] for cls in rows.TABLE_OF_EVENT}
        self.stats.rows = self.sink.close()
        return self.stats


def replay_files(
    paths: Sequence[Path],
    sink: Sink,
    venue: Venue,
    on_progress: Callable[[Path, int], None] | None = None,
    batch_rows: int = 100_000,
) -> ReplayStats:
    """Replay every file in order into ``sink``. ``on_progress(path, bytes_read)`` is
    called every few thousand lines. Raises ``CaptureError``/``ReplayError``; the sink
    is aborted (no partial output) on any error."""
    rp = Replayer(sink, venue.replay_decoder(REPLAY_CONNECTION), batch_rows)
    try:
        for path in paths:
            capture, records = read_capture(path)
            for i, rec in enumerate(records):
                rp.feed(rec)
                if on_progress is not None and i % 4096 == 0:
                    on_progress(path, capture.bytes_read)
            if on_progress is not None:
                on_progress(path, capture.bytes_read)
            rp.stats.files += 1
            rp.stats.skipped_lines += capture.skipped
            rp.stats.unreadable_lines += capture.unreadable
        return rp.finish()
    except BaseException:
        sink.abort()
        raise
