"""What the QuestDB writer (``tickarchive.store.questdb_writer.QuestDBWriter``) takes and
hands out: the journal and its records as the writer sees them, the metrics it updates,
the rows it sets aside (``Refused``), its counters, and the ILP/HTTP configuration string.
The collector and the tools that drive a writer import these from here.
"""

from __future__ import annotations

import collections
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickarchive.domain import EncodedRows, Event

Rows = Sequence[Event | EncodedRows]


class RecordView(Protocol):
    """A journal record as the writer reads it back (``tickarchive.ingest.journal.Record``)."""

    @property
    def seq(self) -> int: ...
    @property
    def recv_ts_us(self) -> int: ...
    @property
    def connection(self) -> str: ...
    @property
    def frame(self) -> bytes: ...


class JournalView(Protocol):
    """What the writer needs of the journal (``tickarchive.ingest.journal.Journal``): its
    positions, the checkpoint, and reading records back from a position."""

    @property
    def acked_seq(self) -> int: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def backlog_bytes(self) -> int: ...

    def commit(self, seq: int) -> None: ...
    def read_from(self, seq: int) -> Generator[RecordView, None, None]: ...
    def replay_start(self, window_us: int) -> int: ...


class WriterMetrics(Protocol):
    """The part of ``tickarchive.ingest.metrics.CollectorMetrics`` the writer updates."""

    stored_rows: Any
    ticks: Any
    ack_lag: Any
    questdb_flush: Any
    questdb_flush_errors: Any
    writer_buffered_rows: Any
    journal_backlog_bytes: Any


def ilp_conf(host: str, http_port: int, request_timeout_s: float) -> str:
    """The ILP/HTTP configuration string the writer (``store.ilp_http``) and the
    one-shot loaders (``questdb.ingress.Sender``) use: our own flushing and retrying."""
    return (
        f"http::addr={host}:{http_port};auto_flush=off;retry_timeout=0;"
        f"request_timeout={int(request_timeout_s * 1000)};protocol_version=2;"
    )


@dataclass(frozen=True, slots=True)
class Refused:
    """What the writer sets aside instead of storing (the collector quarantines it):

    * ``rejected``: rows QuestDB refuses (``rows``: each ILP row with QuestDB's message);
    * ``unencodable``: events the encoder cannot write (``events``: each with why).

    ``seqs``: the journal records they came from (one record, or the batch's range)."""

    kind: str
    table: str
    seqs: tuple[int, int]
    rows: tuple[tuple[bytes, str], ...] = ()
    events: tuple[tuple[Event, str], ...] = ()



@dataclass(slots=True)
class WriterStats:
    offered_records: int = 0
    caught_up_records: int = 0
    flushes: int = 0
    flush_errors: int = 0
    catch_up_entries: int = 0
    out_of_order_offers: int = 0
    """Offers whose seq was not the next one (a bug in the caller: the writer then reads
    the journal instead, nothing is lost)."""
    stored_rows: collections.Counter[str] = field(default_factory=collections.Counter)
    refused_rows: collections.Counter[str] = field(default_factory=collections.Counter)
    """Rows set aside (``rejected:<table>``, ``unencodable:<table>``)."""
