"""``/metrics``: request, key and stream metrics, plus lifecycle gauges computed in the background.

Names follow the metrics contract: ``tickarchive_api_requests_total{endpoint,status}``,
``tickarchive_api_request_seconds{endpoint}``, per key ``tickarchive_api_key_requests_total``,
``tickarchive_api_key_rows_total``, ``tickarchive_api_limited_total{reason,plan}``, the
stream figures (``tickarchive_api_stream_*``), the rollover figures from the warm
``rollover_ledger``, the archive figures (last success from the archive index, failures
from the warm ``job_runs``), and ``tickarchive_storage_bytes{tier}``.

A scrape never touches a store: ``LifecycleGauges.refresh()`` (run by the app every
``api.metrics_refresh_s``; the archive index only every ``ARCHIVE_EVERY`` refreshes, it
changes monthly and lives on B2) computes the store-derived families and keeps them; the
scrape yields the last ones. A store that cannot be read leaves its previous figures in
place and counts in ``tickarchive_api_scrape_errors_total{source}``;
``tickarchive_api_gauges_age_seconds`` says how old the figures are.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tickarchive.api.errors import ApiError
from tickarchive.api.stores import Stores
from tickarchive.archive import catalog
from tickarchive.archive.errors import ArchiveError
from tickarchive.tables import ALL_TABLES

log = logging.getLogger(__name__)

ARCHIVE_EVERY = 10
"""The archive index is re-read on every this many refreshes (and on the first)."""

ARCHIVE_JOBS = ("archive_export", "archive_verify")
"""``job_runs.job`` values whose failures ``tickarchive_archive_failures_total`` counts."""


class LifecycleGauges(Collector):
    """Store-derived families, computed by ``refresh()``, served as they were last computed."""

    def __init__(self, stores: Stores, scrape_errors: Counter, clock: object = time.time) -> None:
        self.stores = stores
        self.scrape_errors = scrape_errors
        self._families: dict[str, list[Metric]] = {}
        self._lock = threading.Lock()
        self._refreshes = 0
        self._refreshed_at: float | None = None
        self._cold_bytes: float | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = [m for group in self._families.values() for m in group]
            at = self._refreshed_at
        yield from families
        if at is not None:
            age = GaugeMetricFamily("tickarchive_api_gauges_age_seconds", "age of the store-derived figures")
            age.add_metric([], max(0.0, time.time() - at))
            yield age

    def refresh_counters(self) -> None:
        """Read the failure counters (rollover, archive) from the warm store: cheap, and run
        once before the app serves, so the first scrape has them (0 on a new installation)."""
        groups = self._counters()
        with self._lock:
            self._families.update(groups)

    def _counters(self) -> dict[str, list[Metric]]:
        groups: dict[str, list[Metric]] = {}
        for name, fn in (("rollover", self._rollover), ("archive_failures", self._archive_failures)):
            got = fn()
            if got is not None:
                groups[name] = got
        return groups

    def refresh(self) -> None:
        """Recompute every group that can be read now (blocking: run it off the event loop)."""
        read_archive = self._refreshes % ARCHIVE_EVERY == 0
        self._refreshes += 1
        groups = self._counters()
        if read_archive:
            got = self._archive()
            if got is not None:
                groups["archive"] = got
        groups["storage"] = self._storage()
        with self._lock:
            self._families.update(groups)
            self._refreshed_at = time.time()

    def _rollover(self) -> list[Metric] | None:
        try:
            last_ok, last_day, failures = self.stores.warm.ledger_summary()
        except ApiError:
            self.scrape_errors.labels("warm").inc()
            return None
        out: list[Metric] = []
        if last_ok is not None:
            g = GaugeMetricFamily("tickarchive_rollover_last_success_timestamp_seconds", "last successful rollover")
            g.add_metric([], last_ok)
            out.append(g)
        if last_day is not None:
            g2 = GaugeMetricFamily(
                "tickarchive_rollover_last_day_timestamp_seconds", "newest day rolled over (its midnight, UTC)"
            )
            g2.add_metric([], dt.datetime.combine(last_day, dt.time(), dt.UTC).timestamp())
            out.append(g2)
        c = CounterMetricFamily("tickarchive_rollover_failures", "rollover ledger rows with status failed")
        c.add_metric([], failures)
        out.append(c)
        return out

    def _archive_failures(self) -> list[Metric] | None:
        try:
            failed = self.stores.warm.job_failures(ARCHIVE_JOBS)
        except ApiError:
            self.scrape_errors.labels("warm").inc()
            return None
        c = CounterMetricFamily(
            "tickarchive_archive_failures", "failed archive export/verify runs (warm job_runs)"
        )
        c.add_metric([], failed)
        return [c]

    def _archive(self) -> list[Metric] | None:
        try:
            index = catalog.read_index(self.stores.cold.target)
        except (ArchiveError, OSError) as exc:
            log.warning("metrics: archive index unreadable: %s", exc)
            self.scrape_errors.labels("archive").inc()
            return None
        out: list[Metric] = []
        created = [m.created_at for m in index.months]
        if created:
            latest = max(dt.datetime.fromisoformat(c.replace("Z", "+00:00")) for c in created)
            g = GaugeMetricFamily("tickarchive_archive_last_success_timestamp_seconds", "newest archived month export")
            g.add_metric([], latest.timestamp())
            out.append(g)
        self._cold_bytes = float(sum(m.bytes for m in index.months))
        return out

    def _storage(self) -> list[Metric]:
        s = GaugeMetricFamily("tickarchive_storage_bytes", "bytes held per tier", labels=["tier"])
        if self._cold_bytes is not None:
            s.add_metric(["cold"], self._cold_bytes)
        try:
            hot = 0
            for t in ALL_TABLES:
                row = self.stores.qdb_pool.fetch(f"SELECT sum(diskSize) FROM table_partitions('{t.name}')")
                hot += int(row[0][0] or 0) if row else 0
            s.add_metric(["hot"], float(hot))
        except ApiError:
            self.scrape_errors.labels("hot").inc()
        try:
            s.add_metric(["warm"], float(self.stores.warm.database_bytes()))
        except ApiError:
            self.scrape_errors.labels("warm").inc()
        return [s] if s.samples else []


class ApiMetrics:
    def __init__(self, stores: Stores | None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("tickarchive_api_requests", "API requests", ["endpoint", "status"], registry=r)
        self.seconds = Histogram(
            "tickarchive_api_request_seconds",
            "API request latency",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.scrape_errors = Counter(
            "tickarchive_api_scrape_errors", "stores unreadable when computing /metrics figures", ["source"], registry=r
        )
        self.key_requests = Counter(
            "tickarchive_api_key_requests", "requests admitted per API key", ["key", "plan"], registry=r
        )
        self.key_rows = Counter("tickarchive_api_key_rows", "rows returned per API key", ["key", "plan"], registry=r)
        self.limited = Counter(
            "tickarchive_api_limited", "requests refused by a limit", ["reason", "plan"], registry=r
        )
        self.saturated = Counter("tickarchive_api_saturated", "requests answered 503 saturated", registry=r)
        self.streams = Gauge("tickarchive_api_stream_clients", "WebSocket streams open", ["mode"], registry=r)
        self.stream_messages = Counter(
            "tickarchive_api_stream_messages", "messages sent to stream clients", ["mode"], registry=r
        )
        self.stream_dropped = Counter(
            "tickarchive_api_stream_dropped", "stream clients dropped for reading too slowly", registry=r
        )
        self.stream_interruptions = Counter(
            "tickarchive_api_stream_interruptions", "times the live feed from the collector was interrupted", registry=r
        )
        for source in ("warm", "hot", "archive"):
            self.scrape_errors.labels(source)
        for mode in ("live", "delayed", "replay"):
            self.streams.labels(mode)
            self.stream_messages.labels(mode)
        self.gauges: LifecycleGauges | None = None
        if stores is not None:
            self.gauges = LifecycleGauges(stores, self.scrape_errors)
            r.register(self.gauges)
