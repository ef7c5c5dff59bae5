"""The contract the dashboards and alerts are checked against is the one the collector
really exports: every family of ``ingest.metrics.CollectorMetrics`` with its type."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from tests.ops.metrics_contract import CONTRACT
from tickarchive.ingest.metrics import CollectorMetrics

API_ONLY = {
    "tickarchive_rollover_last_success_timestamp_seconds", "tickarchive_rollover_last_day_timestamp_seconds",
    "tickarchive_rollover_failures_total", "tickarchive_archive_last_success_timestamp_seconds",
    "tickarchive_archive_failures_total", "tickarchive_storage_bytes", "tickarchive_api_requests_total",
    "tickarchive_api_request_seconds",
}


def test_collector_exports_the_contract() -> None:
    registry = CollectorRegistry()
    CollectorMetrics(registry)
    exported = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        exported[name] = family.type
    expected = {name: kind for name, (kind, _labels) in CONTRACT.items() if name not in API_ONLY}
    assert exported == expected
