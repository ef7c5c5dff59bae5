"""The provisioned Grafana dashboard: every PromQL expression parses (promtool) and uses
only metric names of the metrics contract; the issue's panels are all there; the
provisioning files point at the dashboard and datasource."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.metrics_contract import BUILTIN, CONTRACT, TARGET_LABELS
from tests.ops.promql import base_metric, names, substitute_grafana

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tickarchive.json"


def _panels() -> list[dict[str, Any]]:
    dash = json.loads(DASHBOARD.read_text())
    return [p for p in dash["panels"] if p["type"] != "row"]


def _exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels() for t in p["targets"]]


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus"
    rules = [{"record": f"dashboard:expr_{i}", "expr": substitute_grafana(e)} for i, (_t, e) in enumerate(_exprs())]
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", "dashboard_rules.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_every_expression_uses_only_contract_metrics() -> None:
    known = {**CONTRACT, **BUILTIN}
    used: set[str] = set()
    for title, expr in _exprs():
        n = names(expr)
        assert n.metrics, f"{title}: {expr}"
        bases = set()
        for m in n.metrics:
            base = base_metric(m)
            assert base is not None, f"panel {title!r}: {m} is not in the metrics contract"
            if m != base:  # a histogram series: only inside histogram_quantile
                assert "histogram_quantile" in expr, f"panel {title!r}: {m} outside histogram_quantile"
            bases.add(base)
        allowed = set().union(*(known[b][1] for b in bases)) | TARGET_LABELS | {"le"}
        assert n.labels <= allowed, f"panel {title!r}: labels {n.labels - allowed} not on {bases}"
        used |= bases
    # counters are only used through rate/increase
    for title, expr in _exprs():
        for m in names(expr).metrics:
            if CONTRACT.get(m, ("",))[0] == "counter":
                assert f"rate({m}" in expr or f"increase({m}" in expr, f"panel {title!r}: raw counter {m}"
    # what issue 8 asks the dashboard to show
    for required in (
        "tickarchive_frames_total", "tickarchive_exchange_lag_seconds", "tickarchive_gaps_total",
        "tickarchive_reconnects_total", "tickarchive_journal_backlog_bytes", "tickarchive_questdb_flush_seconds",
        "tickarchive_questdb_flush_errors_total", "tickarchive_storage_bytes",
        "tickarchive_rollover_last_success_timestamp_seconds", "tickarchive_archive_last_success_timestamp_seconds",
    ):
        assert required in used, f"the dashboard does not show {required}"


def test_lexer_finds_names() -> None:
    n = names('histogram_quantile(0.99, sum by (le, table) (rate(tickarchive_questdb_flush_seconds_bucket'
              '{table=~"quo.*"}[$__rate_interval])))')
    assert n.metrics == {"tickarchive_questdb_flush_seconds_bucket"}
    assert n.labels == {"le", "table"}
    assert names("1 - tickarchive_disk_free_bytes / tickarchive_disk_total_bytes > 0.8").metrics == {
        "tickarchive_disk_free_bytes", "tickarchive_disk_total_bytes"
    }
    assert names("(sum(increase(tickarchive_ticks_total[1m])) or vector(0)) == 1e6").metrics == {
        "tickarchive_ticks_total"
    }
    assert base_metric("tickarchive_ticks_total_bucket") is None  # a counter has no buckets


def test_provisioning_points_at_the_dashboard_and_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    source = ds["datasources"][0]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tickarchive.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "tickarchive-overview"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in _panels():
        assert p["datasource"]["uid"] == source["uid"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == source["uid"]
