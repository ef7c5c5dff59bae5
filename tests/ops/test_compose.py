"""The production docker-compose file and its Dockerfile: parsed (PyYAML), and every file
they mount or copy exists. (No Docker engine in CI: the images themselves are not built.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    return doc


def test_services_and_images() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "questdb", "timescaledb", "migrate", "collector", "api", "jobs", "prometheus", "alertmanager", "grafana"
    }
    assert services["questdb"]["image"] == "questdb/questdb:9.3.4"
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    # collector and API: our image, our commands, reachable by Prometheus on the compose network
    assert services["collector"]["command"] == ["collect"]
    assert services["api"]["command"] == ["api"]
    for name in ("collector", "api", "migrate", "jobs"):
        s = services[name]
        assert s["build"] == {"context": "../..", "dockerfile": "deploy/docker/Dockerfile"}
        assert s["environment"]["TICKARCHIVE_QUESTDB__HOST"] == "questdb"
        assert s["environment"]["TICKARCHIVE_METRICS__HOST"] == "0.0.0.0"
        assert s["env_file"] == "tickarchive.env"
    assert services["collector"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name, s in services.items():
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if name not in ("migrate", "jobs"):
            assert s["restart"] == "unless-stopped", name


def test_mounted_and_copied_files_exist() -> None:
    for name, s in _compose()["services"].items():
        for volume in s.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
    assert (COMPOSE_DIR / "tickarchive.env.example").is_file()
    assert (COMPOSE_DIR / ".env.example").is_file()
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for path in src.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    assert 'ENTRYPOINT ["tickarchive"]' in dockerfile
    assert "USER tickarchive" in dockerfile


def test_compose_variables_are_documented() -> None:
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (COMPOSE_DIR / ".env.example").read_text()
    assert required == {"QUESTDB_PASSWORD", "POSTGRES_PASSWORD", "POSTGRES_READER_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    for var in required:
        assert f"{var}=" in example
