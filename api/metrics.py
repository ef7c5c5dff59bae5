"""``/metrics``: request metrics plus lifecycle figures computed from the stores on scrape.

Names follow the metrics contract: ``tickarchive_api_requests_total{endpoint,status}``,
``tickarchive_api_request_seconds{endpoint}``, the rollover figures from the warm
``rollover_ledger``, the archive figures from the archive index, and
``tickarchive_storage_bytes{tier}``. A store that cannot be read on scrape leaves its
figures out (the scrape itself still succeeds) and counts in
``tickarchive_api_scrape_errors_total{source}``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tickarchive.api.errors import ApiError
from tickarchive.api.stores import Stores
from tickarchive.archive import catalog
from tickarchive.archive.errors import ArchiveError
from tickarchive.tables import ALL_TABLES

log = logging.getLogger(__name__)


class LifecycleCollector(Collector):
    def __init__(self, stores: Stores, scrape_errors: Counter) -> None:
        self.stores = stores
        self.scrape_errors = scrape_errors

    def collect(self) -> Iterator[Metric]:
        yield from self._rollover()
        archive, cold_bytes = self._archive()
        yield from archive
        yield from self._storage(cold_bytes)

    def _rollover(self) -> Iterator[Metric]:
        try:
            last_ok, last_day, failures = self.stores.warm.ledger_summary()
        except ApiError:
            self.scrape_errors.labels("warm").inc()
            return
        g = GaugeMetricFamily("tickarchive_rollover_last_success_timestamp_seconds", "last successful rollover")
        if last_ok is not None:
            g.add_metric([], last_ok)
            yield g
        if last_day is not None:
            g2 = GaugeMetricFamily(
                "tickarchive_rollover_last_day_timestamp_seconds", "newest day rolled over (its midnight, UTC)"
            )
            g2.add_metric([], dt.datetime.combine(last_day, dt.time(), dt.UTC).timestamp())
            yield g2
        c = CounterMetricFamily("tickarchive_rollover_failures", "rollover ledger rows with status failed")
        c.add_metric([], failures)
        yield c

    def _archive(self) -> tuple[list[Metric], float | None]:
        out: list[Metric] = []
        try:
            index = catalog.read_index(self.stores.cold.target)
        except (ArchiveError, OSError):
            self.scrape_errors.labels("archive").inc()
            return out, None
        created = [m.created_at for m in index.months]
        if created:
            latest = max(dt.datetime.fromisoformat(c.replace("Z", "+00:00")) for c in created)
            g = GaugeMetricFamily("tickarchive_archive_last_success_timestamp_seconds", "newest archived month export")
            g.add_metric([], latest.timestamp())
            out.append(g)
        c = CounterMetricFamily("tickarchive_archive_failures", "archive failures recorded at the target")
        c.add_metric([], 0)
        out.append(c)
        return out, float(sum(m.bytes for m in index.months))

    def _storage(self, cold_bytes: float | None) -> Iterator[Metric]:
        s = GaugeMetricFamily("tickarchive_storage_bytes", "bytes held per tier", labels=["tier"])
        if cold_bytes is not None:
            s.add_metric(["cold"], cold_bytes)
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
        if s.samples:
            yield s


class ApiMetrics:
    def __init__(self, stores: Stores | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "tickarchive_api_requests", "API requests", ["endpoint", "status"], registry=self.registry
        )
        self.seconds = Histogram(
            "tickarchive_api_request_seconds",
            "API request latency",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "tickarchive_api_scrape_errors", "stores unreadable on /metrics scrape", ["source"], registry=self.registry
        )
        if stores is not None:
            self.registry.register(LifecycleCollector(stores, self.scrape_errors))
