"""The systemd units, checked by ``systemd-analyze verify`` on copies whose binaries point
at a stub (the real ones live in /opt/tickarchive on a server), their calendars by
``systemd-analyze calendar``, and the hardening every unit must carry."""

from __future__ import annotations

import configparser
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SERVICES = sorted(SYSTEMD.glob("*.service"))
TIMERS = sorted(SYSTEMD.glob("*.timer"))
LONG_RUNNING = {"tickarchive-collector.service", "tickarchive-api.service", "tickarchive-questdb.service"}
TICKARCHIVE = "/opt/tickarchive/venv/bin/tickarchive"
JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze not found: apt-get install systemd"
    return path


def _version() -> int:
    out = subprocess.run([_analyze(), "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[1])


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_units_exist() -> None:
    names = {p.name for p in SERVICES + TIMERS}
    for job in ("rollover", "archive", "backfill", "quality-report", "journal-archive", "warm-retention"):
        assert f"tickarchive-{job}.service" in names
        assert f"tickarchive-{job}.timer" in names
    assert names >= LONG_RUNNING


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    stub = tmp_path / "stub"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for unit in SERVICES + TIMERS:
        text = unit.read_text().replace(TICKARCHIVE, str(stub)).replace(JAVA, str(stub))
        (tmp_path / unit.name).write_text(text)
    proc = subprocess.run(
        [_analyze(), "verify", "--man=no", *(str(tmp_path / u.name) for u in SERVICES + TIMERS)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if line.strip()]
    if _version() < 254:  # RestartSteps/RestartMaxDelaySec (the backoff) arrived in systemd 254
        problems = [p for p in problems if not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", p)]
    assert problems == []


def test_every_timer_has_a_valid_calendar_and_a_service() -> None:
    for timer in TIMERS:
        unit = _unit(timer)
        calendar = unit["Timer"]["OnCalendar"]
        proc = subprocess.run([_analyze(), "calendar", calendar], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"{timer.name}: {calendar}: {proc.stderr}"
        assert "Next elapse:" in proc.stdout
        assert unit["Timer"]["Persistent"] == "true"
        assert (SYSTEMD / timer.name.replace(".timer", ".service")).is_file()


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_hardening(service: Path) -> None:
    s = _unit(service)["Service"]
    assert s["User"] in ("tickarchive", "questdb")
    assert s["ProtectSystem"] == "strict"
    assert s["NoNewPrivileges"] == "yes"
    assert s["PrivateTmp"] == "yes"
    assert s["CapabilityBoundingSet"] == ""
    assert int(s["LimitNOFILE"]) >= 65536
    assert s["ReadWritePaths"].startswith("/var/lib/")
    if service.name in LONG_RUNNING:
        assert s["Restart"] == "always"
        assert s["RestartSec"].endswith("s")
        assert "RestartMaxDelaySec" in s
        assert _unit(service)["Unit"]["StartLimitIntervalSec"] == "0"  # never give up restarting
    else:
        assert s["Type"] == "oneshot"


def _unescape(value: str) -> str:
    """What systemd hands to the process: %% -> %, $$ -> $."""
    return value.replace("%%", "%").replace("$$", "$")


def test_archive_unit_exports_and_verifies_the_previous_month() -> None:
    lines = [ln for ln in (SYSTEMD / "tickarchive-archive.service").read_text().splitlines()
             if ln.startswith("ExecStart=")]
    assert len(lines) == 2
    first = dt.datetime.now(dt.UTC).date().replace(day=1)
    previous = (first - dt.timedelta(days=1)).strftime("%Y-%m")
    for line, verb in zip(lines, ("export", "verify"), strict=True):
        argv = _unescape(line.removeprefix("ExecStart=")).replace(f"exec {TICKARCHIVE}", "echo")
        assert argv.startswith("/bin/sh -c '")
        script = argv.removeprefix("/bin/sh -c '").removesuffix("'")
        out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True).stdout
        assert out.split() == ["archive", verb, "--month", previous]


def test_journal_archive_unit_ships_verifies_then_prunes() -> None:
    lines = [ln.removeprefix("ExecStart=") for ln in (SYSTEMD / "tickarchive-journal-archive.service").read_text()
             .splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 3
    assert lines[0] == f"{TICKARCHIVE} archive journal"  # every day not shipped yet
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    script = _unescape(lines[1]).replace(f"exec {TICKARCHIVE}", "echo")
    script = script.removeprefix("/bin/sh -c '").removesuffix("'")
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["archive", "verify-journal", "--day", yesterday]
    assert lines[2] == f"{TICKARCHIVE} journal prune"


def test_job_command_lines_parse() -> None:
    """The subcommands the jobs run exist with the options the units pass."""
    from tickarchive.cli import app

    runner = CliRunner()
    for argv, option in (
        (["report", "quality", "--help"], "--day"),
        (["archive", "export", "--help"], "--month"),
        (["archive", "verify", "--help"], "--month"),
        (["backfill", "--help"], "--open"),
        (["rollover", "--help"], "--dry-run"),
        (["warm-retention", "--help"], "--dry-run"),
        (["archive", "journal", "--help"], "--day"),
        (["archive", "verify-journal", "--help"], "--day"),
        (["journal", "prune", "--help"], "--dry-run"),
        (["collect", "--help"], "--journal-dir"),
        (["api", "--help"], "--port"),
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert option in result.output
    unit = (SYSTEMD / "tickarchive-quality-report.service").read_text()
    assert f"ExecStart={TICKARCHIVE} report quality --day yesterday --out ${{TICKARCHIVE_REPORT_DIR}}" in unit
    assert "TICKARCHIVE_REPORT_DIR=" in (SYSTEMD / "tickarchive.env").read_text()


def test_env_template_names_real_settings() -> None:
    from tickarchive.settings import Settings

    for line in (SYSTEMD / "tickarchive.env").read_text().splitlines():
        m = re.match(r"TICKARCHIVE_([A-Z]+)__([A-Z0-9_]+)=", line)
        if m:
            section, field = m[1].lower(), m[2].lower()
            model = Settings.model_fields[section].annotation
            assert model is not None
            assert field in model.model_fields, f"{line}: no setting {section}.{field}"
