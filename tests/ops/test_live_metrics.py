"""Every alert rule and every dashboard panel is driven by a metric production really emits:
the names in deploy/prometheus/alerts.yml and deploy/grafana are checked against live
``/metrics`` scrapes over HTTP of a running collector (against the simulator, into a real
QuestDB) and of the API (uvicorn, over the real test stores) — not against a list.

The collector is scraped as soon as it has subscribed, before anything has gone wrong:
every counter an alert or a panel uses must already be there at 0 (a missing series is
"No data" on a panel and hides the first event from ``increase()``). The API is scraped on a
fresh installation (the failure counters exist, the success timestamps do not: the "never
succeeded" alerts cover that) and after a rollover and an archive export."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import uvicorn
import yaml
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.test_collector import collector_settings, running, sim_config
from tests.ops.promql import names, substitute_grafana
from tickarchive.api.app import create_app
from tickarchive.archive import synthetic
from tickarchive.archive.export import export_month
from tickarchive.archive.replay_source import ParquetDirSource
from tickarchive.archive.targets import open_target
from tickarchive.ingest.metrics import CHANNELS
from tickarchive.loadtest.sim import Simulator
from tickarchive.months import Month
from tickarchive.settings import ApiSettings, ArchiveSettings, Settings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.tables import QUOTES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
Samples = dict[str, list[tuple[dict[str, str], float]]]
"""sample name (``..._total``, ``..._bucket``) -> [(labels, value)]"""


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        text = r.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def _alert_metrics() -> set[str]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return {m for g in doc["groups"] for r in g["rules"] for m in names(str(r["expr"])).metrics}


def _panel_metrics() -> set[str]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "tickarchive.json").read_text())
    return {
        m for p in dash["panels"] if p["type"] != "row" for t in p["targets"]
        for m in names(substitute_grafana(t["expr"])).metrics
    }


def _collector_scrapes(questdb: QuestDBHandle, tmp_path: Path) -> tuple[Samples, Samples]:
    """(a scrape as soon as every channel is subscribed, one after the first once-a-second
    housekeeping tick, which sets the disk and backlog gauges, and after the first market
    data, which makes the exchange lag's series)."""

    async def scenario() -> tuple[Samples, Samples]:
        config = sim_config(tmp_path, instruments=12, rate_per_s=300.0)
        async with Simulator(config) as sim, running(
            collector_settings(connections=2), sim, questdb, tmp_path / "journal"
        ) as c:
            server, thread = start_http_server(0, addr="127.0.0.1", registry=c.metrics.registry)
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            try:
                first = await asyncio.to_thread(_scrape, url)
                later = first
                # conditions, polled (the deadline only bounds a failure): the lag histogram's
                # series appear with the first frames, which on a loaded machine can come
                # after the first housekeeping tick
                deadline = asyncio.get_running_loop().time() + 60
                wanted = {"tickarchive_disk_free_bytes", "tickarchive_exchange_lag_seconds_bucket"}
                while not wanted <= set(later):
                    assert asyncio.get_running_loop().time() < deadline, f"not in 60 s: {wanted - set(later)}"
                    await asyncio.sleep(0.1)
                    later = await asyncio.to_thread(_scrape, url)
                return first, later
            finally:
                server.shutdown()
                thread.join()

    return asyncio.run(scenario())


@contextmanager
def _api(settings: Settings) -> Iterator[str]:
    """The API served by uvicorn on a socket bound here first (no released-port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        tick = threading.Event()
        while thread.is_alive() and not server.started:  # a condition, polled
            tick.wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_alerts_and_panels_use_metrics_the_live_services_emit(
    questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path
) -> None:
    collector, collector_later = _collector_scrapes(questdb_clean, tmp_path)

    # counters an alert or a panel sums are there from the start, at 0, for every label value known then
    for name, label, values in (
        ("tickarchive_gaps_total", "kind", {"disconnect", "book_seq", "trade_seq", "stale", "downtime", "rejected"}),
        ("tickarchive_malformed_frames_total", "kind",
         {"invalid_json", "unexpected_shape", "unknown_channel", "invalid_data"}),
        ("tickarchive_questdb_flush_errors_total", "table", {"quotes", "trades", "book_changes", "gaps"}),
        ("tickarchive_reconnects_total", "connection", {"c0", "c1"}),
    ):
        got = {labels[label]: value for labels, value in collector.get(name, [])}
        assert values <= set(got), f"{name}: no series for {values - set(got)} at start"
        if name != "tickarchive_gaps_total":  # a start may open a gap; nothing else went wrong
            assert all(got[v] == 0.0 for v in values), (name, got)
    assert {labels["connection"] for labels, _ in collector["tickarchive_connection_up"]} == {"c0", "c1"}
    frames = {(labels["connection"], labels["channel"]) for labels, _ in collector["tickarchive_frames_total"]}
    assert {(c, ch) for c in ("c0", "c1") for ch in CHANNELS} <= frames  # every channel's rate, 0 until it ticks
    flushes = {labels["table"] for labels, _ in collector["tickarchive_questdb_flush_seconds_bucket"]}
    assert {"quotes", "trades", "book_changes", "gaps"} <= flushes

    settings = Settings(
        questdb=questdb_clean.settings(),
        postgres=postgres_clean.settings(),
        archive=ArchiveSettings(target=str(tmp_path / "lake"), cache_dir=tmp_path / "cache"),
        api=ApiSettings(metrics_refresh_s=0.1),  # the archive index is re-read every 10 refreshes
    )
    with _api(settings) as url:
        fresh = _scrape(f"{url}/metrics")
        # a new installation: failures counted (0), no success yet (the "never succeeded" alerts watch that)
        assert fresh["tickarchive_rollover_failures_total"] == [({}, 0.0)]
        assert fresh["tickarchive_archive_failures_total"] == [({}, 0.0)]
        assert "tickarchive_rollover_last_day_timestamp_seconds" not in fresh
        assert "tickarchive_archive_last_success_timestamp_seconds" not in fresh

        # a day rolled over and a month archived
        postgres_clean.query(
            "INSERT INTO rollover_ledger (day, table_name, rows_hot, rows_warm, status) "
            "VALUES ('2026-10-30', 'quotes', 10, 10, 'verified')"
        )
        replay = tmp_path / "replay"
        replay.mkdir()
        pq.write_table(synthetic.quotes(500, Month(2026, 10), n_instruments=5), replay / "quotes.parquet")
        export_month(ParquetDirSource(replay), open_target(settings.archive.target), QUOTES, Month(2026, 10))
        # the figures are recomputed in the background: wait until they show both
        deadline = time.monotonic() + 60
        after = _scrape(f"{url}/metrics")
        while not {"tickarchive_rollover_last_day_timestamp_seconds",
                   "tickarchive_archive_last_success_timestamp_seconds"} <= set(after):
            assert time.monotonic() < deadline, sorted(after)
            time.sleep(0.1)  # polling the scrape until the refresh shows the new rows
            after = _scrape(f"{url}/metrics")
    assert after["tickarchive_rollover_last_day_timestamp_seconds"] == [
        ({}, dt.datetime(2026, 10, 30, tzinfo=dt.UTC).timestamp())
    ]
    assert "tickarchive_archive_last_success_timestamp_seconds" in after

    emitted = set(collector) | set(collector_later) | set(fresh) | set(after) | {"up"}
    for what, used in (("alerts.yml", _alert_metrics()), ("the Grafana dashboard", _panel_metrics())):
        missing = used - emitted
        assert not missing, f"{what} uses metrics no live service emits: {sorted(missing)}"
