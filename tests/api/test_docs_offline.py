"""/docs and /redoc work offline (#16): headless Chromium, with every host name except
127.0.0.1 unresolvable, renders the endpoint list from local assets only; its net log
shows no connection anywhere but the API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.api.conftest import Api
from tickarchive.api.app import create_app

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
]
OPERATIONS = ("/quotes", "/trades", "/gaps", "/chain", "/book", "/ohlcv", "/instruments", "/coverage", "/health")


@pytest.fixture
def docs_url(api_pg: Api) -> Iterator[str]:
    app = create_app(api_pg.settings, api_pg.stores, live=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(300):
        if server.started:
            ready.set()
            break
        thread.join(0.1)
    assert ready.is_set(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def chromium(url: str, tmp: Path, *extra: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Chromium is needed (Debian: apt-get install chromium; .ci/run installs it)"
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    out = subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


CHROMIUM_OWN = ("google.com", "googleapis.com", "gstatic.com")
"""Hosts Chromium's own services ask for (they fail to resolve: the resolver rules)."""


def network(netlog: Path) -> tuple[set[str], set[str]]:
    """(TCP connections made, URLs the page requested) according to Chromium's net log."""
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    connected, urls = set(), set()
    for e in log.get("events", []):
        kind, params = types.get(e["type"]), e.get("params") or {}
        if kind == "TCP_CONNECT_ATTEMPT" and params.get("address"):
            connected.add(str(params["address"]).rsplit(":", 1)[0])
        elif kind == "URL_REQUEST_START_JOB" and params.get("url"):
            host = str(params["url"]).split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if not host.endswith(CHROMIUM_OWN):
                urls.add(host)
    return connected, urls


def test_swagger_ui_renders_the_endpoints_offline(docs_url: str, tmp_path: Path) -> None:
    netlog = tmp_path / "docs.netlog.json"
    dom = chromium(f"{docs_url}/docs", tmp_path, f"--log-net-log={netlog}")
    for path in OPERATIONS:
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "cdn.jsdelivr.net" not in dom
    connected, requested = network(netlog)
    assert connected == {"127.0.0.1"}, connected
    assert requested == {"127.0.0.1"}, requested


def test_redoc_renders_the_endpoints_offline(docs_url: str, tmp_path: Path) -> None:
    netlog = tmp_path / "redoc.netlog.json"
    dom = chromium(f"{docs_url}/redoc", tmp_path, f"--log-net-log={netlog}")
    for summary in ("Quotes (ticker rows) of an instrument or pattern", "The option chain as of an instant",
                    "Trade OHLCV bars of one instrument"):
        assert summary in dom, summary
    assert "fonts.googleapis.com" not in dom
    connected, requested = network(netlog)
    assert connected == {"127.0.0.1"}, connected
    assert requested == {"127.0.0.1"}, requested  # ReDoc's footer logo (cdn.redoc.ly): blocked by the CSP


def test_docs_pages_carry_a_csp_and_local_assets(api_pg: Api) -> None:
    for path in ("/docs", "/redoc"):
        r = api_pg.client.get(path)
        assert r.status_code == 200
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "cdn." not in r.text
        assert "googleapis" not in r.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = api_pg.client.get(f"/docs-static/{asset}")
        assert r.status_code == 200
        assert len(r.content) > 100_000
