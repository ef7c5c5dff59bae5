"""The collector's Prometheus metrics (names fixed by the metrics contract).

One ``CollectorMetrics`` per collector process, on its own ``CollectorRegistry`` (so
tests can build several without clashing in the global registry). ``serve(host, port)``
starts the exporter thread of prometheus-client.

Hot-path note: label lookups (``.labels(...)``) are cached per connection and channel
by the callers (``frame_counter``); ``tickarchive_frames_total`` is added per read batch
(``ingest.connection``) and ``tickarchive_ticks_total`` per table per writer batch
(``store.questdb_writer``), not per frame.

``tickarchive_ack_lag_seconds``: two observations per acknowledged writer batch, the
ages (exchange ts → acknowledgement) of the batch's oldest and newest *live market row*
(quotes, ``ws`` trades, book changes, index ticks); gaps, heartbeats, instruments and
backfilled trades are not measured.

Every labelled counter and gauge whose label values are known at start (gap kinds,
malformed-frame kinds, tables; connections once their driver exists,
``declare_connection``) is exported at 0 from the first scrape: a panel shows 0 rather than
"No data", and ``increase()`` sees the first event (a series born at 1 would hide it).
"""

from __future__ import annotations

import bisect
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tickarchive.domain import GapKind
from tickarchive.ingest.errors import IngestError
from tickarchive.ingest.journal.files import disk_usage
from tickarchive.tables import ALL_TABLES
from tickarchive.venue import MalformedKind

CHANNELS: Final = (
    "ticker",
    "book",
    "trades",
    "index",
    "instrument_state",
    "platform_state",
    "heartbeat",
    "rpc",
    "other",
)
"""Values of the ``channel`` label of ``tickarchive_frames_total``."""

_LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ACK_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0
)
"""Fine below 100 ms: the load harness reads p50/p95/p99 from these buckets."""
_FAST_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class _LagChild:
    """One label set of a ``LagHistogram``: plain counts, no lock."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1  # le semantics: v <= bound
        self.sum += value


class LagHistogram(Collector):
    """A labelled histogram for a per-frame observation on the event loop: ``observe``
    is a bisect and two additions (prometheus-client's ``Histogram.observe`` takes a lock
    and walks the buckets: ~3x the cost). Exposed as an ordinary Prometheus histogram.
    Observed from one thread; a scrape reads counts that may be one observation apart
    across buckets, never torn values."""

    def __init__(self, name: str, documentation: str, label: str, buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.buckets = buckets
        self._children: dict[str, _LagChild] = {}
        registry.register(self)

    def labels(self, value: str) -> _LagChild:
        c = self._children.get(value)
        if c is None:
            c = self._children[value] = _LagChild(self.buckets)
        return c

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[Metric]:
        fam = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, c in list(self._children.items()):
            counts = list(c.counts)
            cum = 0
            buckets = []
            for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                cum += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cum)))
            fam.add_metric([value], buckets, c.sum)
        yield fam


class CollectorMetrics:
    """Every collector metric of the contract, on ``self.registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.frames = Counter("tickarchive_frames", "frames received", ["connection", "channel"], registry=r)
        self.ticks = Counter("tickarchive_ticks", "rows produced by the normalizer", ["table"], registry=r)
        self.stored_rows = Counter("tickarchive_stored_rows", "rows acknowledged by QuestDB", ["table"], registry=r)
        self.exchange_lag = LagHistogram(
            "tickarchive_exchange_lag_seconds", "receive time minus exchange timestamp", "channel", _LAG_BUCKETS, r
        )
        self.ack_lag = Histogram(
            "tickarchive_ack_lag_seconds",
            "exchange timestamp to QuestDB acknowledgement (oldest and newest live row per batch)",
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.journal_bytes = Counter("tickarchive_journal_bytes", "bytes appended to the journal", registry=r)
        self.journal_backlog_bytes = Gauge(
            "tickarchive_journal_backlog_bytes", "journaled bytes not yet acknowledged by QuestDB", registry=r
        )
        self.journal_fsync = Histogram(
            "tickarchive_journal_fsync_seconds", "journal fsync duration", buckets=_FAST_BUCKETS, registry=r
        )
        self.questdb_flush = Histogram(
            "tickarchive_questdb_flush_seconds",
            "one ILP/HTTP transaction (one table)",
            ["table"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.questdb_flush_errors = Counter(
            "tickarchive_questdb_flush_errors", "failed ILP/HTTP flushes", ["table"], registry=r
        )
        self.writer_buffered_rows = Gauge(
            "tickarchive_writer_buffered_rows", "rows encoded and not yet acknowledged", registry=r
        )
        self.reconnects = Counter("tickarchive_reconnects", "WebSocket reconnects", ["connection"], registry=r)
        self.connection_up = Gauge("tickarchive_connection_up", "1 while connected", ["connection"], registry=r)
        self.last_frame = Gauge(
            "tickarchive_last_frame_timestamp_seconds", "unix time of the last frame", ["connection"], registry=r
        )
        self.gaps = Counter("tickarchive_gaps", "gaps opened", ["kind"], registry=r)
        self.open_gaps = Gauge("tickarchive_open_gaps", "gaps currently open", ["kind"], registry=r)
        self.max_open_gap = Gauge(
            "tickarchive_max_open_gap_seconds", "age of the oldest open gap", ["kind"], registry=r
        )
        self.subscribed_channels = Gauge(
            "tickarchive_subscribed_channels", "channels confirmed by the exchange", ["connection"], registry=r
        )
        self.instruments = Gauge("tickarchive_instruments", "instruments followed", ["kind"], registry=r)
        self.malformed = Counter("tickarchive_malformed_frames", "frames not understood", ["kind"], registry=r)
        self.disk_free = Gauge("tickarchive_disk_free_bytes", "free bytes on the journal volume", ["path"], registry=r)
        self.disk_total = Gauge("tickarchive_disk_total_bytes", "size of the journal volume", ["path"], registry=r)
        self.journal_disk = Gauge(
            "tickarchive_journal_disk_bytes",
            "bytes the journal's segments occupy (falls when 'journal prune' deletes archived ones)",
            registry=r,
        )
        self.journal_oldest_segment = Gauge(
            "tickarchive_journal_oldest_segment_timestamp_seconds",
            "last modification of the oldest journal segment (unix seconds): how far back the local journal reaches",
            registry=r,
        )
        self.backfilled_trades = Counter(
            "tickarchive_backfilled_trades", "trades inserted from the history API", registry=r
        )
        self.backfill_errors = Counter("tickarchive_backfill_errors", "failed backfill attempts", registry=r)
        self.quarantined = Counter(
            "tickarchive_quarantined",
            "items set aside instead of stored (journal damage, malformed frames, refused rows)",
            ["reason"],
            registry=r,
        )
        self.quarantined.labels(reason="journal_damage")  # exported at 0 from the start
        self._frame_children: dict[tuple[str, str], Counter] = {}
        self._declare()

    def _declare(self) -> None:
        """Create every child whose label values are known now, at 0."""
        for kind in GapKind:
            self.gaps.labels(kind=kind.value)
            self.open_gaps.labels(kind=kind.value)
            self.max_open_gap.labels(kind=kind.value)
        for malformed in MalformedKind:
            self.malformed.labels(kind=malformed.value)
        for t in ALL_TABLES:
            self.ticks.labels(table=t.name)
            self.stored_rows.labels(table=t.name)
            self.questdb_flush_errors.labels(table=t.name)
            self.questdb_flush.labels(table=t.name)

    def declare_connection(self, connection: str) -> None:
        """Export the per-connection series of ``connection`` at 0 (called when its driver is made)."""
        self.reconnects.labels(connection=connection)
        for channel in CHANNELS:
            self.frame_counter(connection, channel)
        self.connection_up.labels(connection=connection).set(0)
        self.subscribed_channels.labels(connection=connection).set(0)

    def frame_counter(self, connection: str, channel: str) -> Counter:
        key = (connection, channel)
        c = self._frame_children.get(key)
        if c is None:
            c = self.frames.labels(connection=connection, channel=channel)
            self._frame_children[key] = c
        return c

    def update_disk(self, path: Path) -> tuple[int, int]:
        """Refresh the disk gauges of the journal volume; return (free, total)."""
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            raise IngestError(f"cannot stat the journal volume {path}: {exc.strerror}") from exc
        self.disk_free.labels(path=str(path)).set(usage.free)
        self.disk_total.labels(path=str(path)).set(usage.total)
        journal_bytes, oldest = disk_usage(path)
        self.journal_disk.set(journal_bytes)
        if oldest is not None:
            self.journal_oldest_segment.set(oldest)
        return usage.free, usage.total

    def serve(self, host: str, port: int) -> int:
        """Start the exporter (a daemon thread of prometheus-client); the port it listens on
        (``port`` 0: one the kernel chose, so a test or harness never races for a free port)."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            from tickarchive.store.stack.procs import port_conflict

            change = (
                "choose another with setting metrics.port (TICKARCHIVE_METRICS__PORT) or `collect --metrics-port N`"
            )
            if exc.errno == errno.EADDRINUSE:
                raise IngestError(f"metrics exporter: {port_conflict(host, port, change)}") from None
            raise IngestError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; {change}") from exc
        return int(server.server_port)
