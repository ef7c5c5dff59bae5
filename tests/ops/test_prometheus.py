"""Prometheus and Alertmanager configuration, checked by their own tools, and the alert
rules unit-tested with ``promtool test rules`` (deploy/prometheus/alerts_test.yml, and
alerts_absence_test.yml for the rules that wait days: "never succeeded")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.ops.metrics_contract import BUILTIN, CONTRACT, TARGET_LABELS
from tests.ops.promql import base_metric, names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROM = DEPLOY / "prometheus"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: apt-get install prometheus prometheus-alertmanager (CI: .ci/run installs them)"
    return path


def _run(*cmd: str, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_promtool_check_config() -> None:
    out = _run(_tool("promtool"), "check", "config", "prometheus.yml", cwd=PROM)
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in out


def test_promtool_check_rules() -> None:
    out = _run(_tool("promtool"), "check", "rules", "alerts.yml", cwd=PROM)
    rules = (PROM / "alerts.yml").read_text().count("- alert: ")
    assert rules >= 10
    assert f"SUCCESS: {rules} rules found" in out


TEST_FILES = ("alerts_test.yml", "alerts_absence_test.yml")


def test_promtool_test_rules() -> None:
    out = _run(_tool("promtool"), "test", "rules", *TEST_FILES, cwd=PROM)
    assert out.count("SUCCESS") == len(TEST_FILES), out


def test_amtool_check_config() -> None:
    out = _run(_tool("amtool"), "check-config", "alertmanager.yml", cwd=DEPLOY / "alertmanager")
    assert "SUCCESS" in out


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_alert_rules_use_only_contract_metrics() -> None:
    known = {**CONTRACT, **BUILTIN}
    for rule in _rules():
        n = names(str(rule["expr"]))
        assert n.metrics, rule["alert"]
        for m in n.metrics:
            assert base_metric(m) == m, f"{rule['alert']}: {m} is not in the metrics contract"
        allowed = set().union(*(known[m][1] for m in n.metrics)) | TARGET_LABELS
        assert n.labels <= allowed, f"{rule['alert']}: labels {n.labels - allowed} unknown"


def test_every_issue_alert_exists_and_is_tested() -> None:
    rules = {str(r["alert"]): str(r["expr"]) for r in _rules()}
    # the alerts issue 8 asks for, by the metric they watch
    assert "tickarchive_ticks_total" in rules["TickarchiveNoTicks"]
    assert "tickarchive_max_open_gap_seconds" in rules["TickarchiveGapOpen"]
    assert "> 10" in rules["TickarchiveGapOpen"]
    assert "tickarchive_journal_backlog_bytes" in rules["TickarchiveJournalBacklogGrowing"]
    assert "tickarchive_rollover_failures_total" in rules["TickarchiveRolloverFailed"]
    assert "tickarchive_rollover_last_day_timestamp_seconds" in rules["TickarchiveRolloverLate"]
    assert "tickarchive_archive_failures_total" in rules["TickarchiveArchiveFailed"]
    assert "tickarchive_archive_last_success_timestamp_seconds" in rules["TickarchiveArchiveLate"]
    assert "> 0.8" in rules["TickarchiveDiskAlmostFull"]
    tested = {
        c["alertname"]
        for f in TEST_FILES
        for t in yaml.safe_load((PROM / f).read_text())["tests"]
        for c in t["alert_rule_test"]
        if c.get("exp_alerts")
    }
    assert tested == set(rules), f"alerts without a firing test: {set(rules) - tested}"


def test_every_alert_fires_on_absence() -> None:
    """A rule that compares a metric that may not exist must have a twin (or a branch) that
    fires on its absence: the collector exports its counters at 0 from the start, so only
    ``up`` and the API's lifecycle timestamps (which exist after a first success) need one."""
    exprs = {str(r["alert"]): str(r["expr"]) for r in _rules()}
    assert 'absent(up{job="tickarchive-collector"})' in exprs["TickarchiveCollectorDown"]
    assert 'absent(up{job="tickarchive-api"})' in exprs["TickarchiveApiDown"]
    assert "or vector(0)" in exprs["TickarchiveNoTicks"]
    for stamp in ("tickarchive_rollover_last_day_timestamp_seconds",
                  "tickarchive_archive_last_success_timestamp_seconds"):
        assert any(e == f"absent({stamp})" for e in exprs.values()), f"nothing fires while {stamp} is absent"


def test_scrape_targets_match_the_services() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert targets["tickarchive-collector"] == ["collector:19100"]
    assert targets["tickarchive-api"] == ["api:18000"]
    # the job label the CollectorDown alert matches
    assert 'job="tickarchive-collector"' in {str(r["alert"]): str(r["expr"]) for r in _rules()}[
        "TickarchiveCollectorDown"
    ]
