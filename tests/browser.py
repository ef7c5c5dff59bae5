"""Headless Chromium for the tests and the docs' screenshots, driven over the DevTools
protocol (a WebSocket; ``websockets``' sync client), offline.

Chromium (Debian package ``chromium``; .ci/run installs it) runs with a fresh profile
directory, no network but loopback (``--host-resolver-rules``: any other host fails to
resolve, so a page that needs the internet shows it), and ``--remote-debugging-port=0``:
Chromium picks its own port and writes it to ``DevToolsActivePort`` in the profile (no
released-port race). It is stopped by the PID we started.

``python -m tests.browser URL OUT.png [WIDTH HEIGHT]`` saves a screenshot (docs/img/).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("chromium not found: apt-get install chromium (CI: .ci/run installs it)")


class Page:
    """One tab, driven by CDP commands."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=120))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression[:80]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def goto(self, url: str, width: int = 1280, height: int = 900, timeout_s: float = 60.0) -> None:
        """Load ``url`` and wait until the document, its images and scripts are loaded."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout_s)

    def wait_for(self, condition: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {condition}")
            time.sleep(0.1)  # polling a condition in the page

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))


@contextmanager
def chromium(profile_dir: Path | None = None) -> Iterator[Page]:
    """A headless Chromium with one page; stopped on exit."""
    # Chromium's helper processes (zygote, renderer, crashpad) may still be writing into the
    # profile when the browser process is gone: they are waited for below, and a file one of
    # them left behind must not fail the test that used the page
    with tempfile.TemporaryDirectory(prefix="tickarchive-chromium-", ignore_cleanup_errors=True) as tmp:
        profile = profile_dir or Path(tmp)
        proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if proc.poll() is not None:
                    raise AssertionError(f"chromium exited with status {proc.returncode}")
                if time.monotonic() > deadline:
                    raise AssertionError("chromium did not open its DevTools port within 60 s")
                time.sleep(0.05)  # polling for the file Chromium writes
            port_text, browser_path = port_file.read_text().splitlines()[:2]
            port = int(port_text)
            with connect(f"ws://127.0.0.1:{port}{browser_path}", max_size=None, open_timeout=30) as bws:
                target = Page(bws).send("Target.createTarget", url="about:blank")["targetId"]
            with connect(f"ws://127.0.0.1:{port}/devtools/page/{target}", max_size=None, open_timeout=30) as ws:
                page = Page(ws)
                page.send("Page.enable")
                page.send("Runtime.enable")
                yield page
        finally:
            try:
                helpers = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                helpers = []
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _gone, alive = psutil.wait_procs(helpers, timeout=30)
            for h in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    h.kill()
            psutil.wait_procs(alive, timeout=30)


def main(argv: list[str]) -> None:
    url, out = argv[0], Path(argv[1])
    width, height = (int(argv[2]), int(argv[3])) if len(argv) >= 4 else (1280, 900)
    with chromium() as page:
        page.goto(url, width, height)
        page.screenshot(out)
    print(f"{out}: {url} at {width}x{height}")


if __name__ == "__main__":
    main(sys.argv[1:])
