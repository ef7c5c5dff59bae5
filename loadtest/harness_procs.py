"""The processes a load run drives: the simulator and the collector as subprocesses
(through their CLIs), the collector's Prometheus metrics, and QuestDB over HTTP.

Driving them from outside keeps the harness independent of their internals: only the
CLI flags, ``/control/...`` of the simulator and the metric names of the contract are
used.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tickarchive.errors import TickarchiveError
from tickarchive.loadtest.errors import HarnessError
from tickarchive.store.stack.running import running

CLI: tuple[str, ...] = (sys.executable, "-c", "from tickarchive.cli import main; main()")


@functools.cache
def _http() -> httpx.Client:
    """One HTTP client for every request the harness makes (keep-alive). ``httpx.get``
    builds a client, and with it an SSL context, per call: that was ~70 % of the
    harness's own CPU (~7 % of a core at 1 sample/s), taken from the box under test."""
    return httpx.Client(trust_env=False)


def _spawn(
    cmd: list[str], log: Path, env: Mapping[str, str] | None = None, stdout_pipe: bool = False
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        try:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else f,
                stderr=f,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as exc:
            raise HarnessError(f"cannot start {' '.join(cmd[:4])}: {exc.strerror}") from exc


def _stop(p: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=10)


@dataclass
class SimProcess:
    """``tickarchive sim`` on a free port; ``control(...)`` calls its control interface."""

    rate: float
    instruments: int
    trades_per_s: float
    sendlog_dir: Path
    log: Path
    seed: int = 1
    extra_args: tuple[str, ...] = ()
    """More ``tickarchive sim`` options (``--time-scale 10``, ...)."""
    proc: subprocess.Popen[bytes] | None = None
    ws_url: str = ""
    base_url: str = ""
    currencies: tuple[str, ...] = ("ETH",)
    kinds: tuple[str, ...] = ("option",)

    def start(self, timeout_s: float = 60.0) -> None:
        cmd = [
            *CLI,
            "sim",
            "--port",
            "0",
            "--rate",
            str(self.rate),
            "--instruments",
            str(self.instruments),
            "--trades-per-s",
            str(self.trades_per_s),
            "--seed",
            str(self.seed),
            "--sendlog-dir",
            str(self.sendlog_dir),
            "--currencies",
            ",".join(self.currencies),
            "--kinds",
            ",".join(self.kinds),
            *self.extra_args,
        ]
        self.proc = p = _spawn(cmd, self.log, stdout_pipe=True)
        assert p.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = b""
        while time.monotonic() < deadline and p.poll() is None:
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                line = p.stdout.readline()
                if line.startswith(b"ready "):
                    break
        if not line.startswith(b"ready "):
            self.stop()
            raise HarnessError(f"simulator did not start (see {self.log})")
        self.ws_url = line.decode().split()[1]
        hostport = self.ws_url.split("//", 1)[1].split("/", 1)[0]
        self.base_url = f"http://{hostport}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def control(self, action: str, timeout_s: float = 120.0, **params: Any) -> Any:
        try:
            r = _http().get(f"{self.base_url}/control/{action}", params=params, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise HarnessError(f"simulator control {action}: {exc}") from exc
        if r.status_code != 200:
            raise HarnessError(f"simulator control {action}: HTTP {r.status_code} {r.text[:200]}")
        return r.json()

    def api(self, method: str, **params: Any) -> Any:
        try:
            r = _http().get(f"{self.base_url}/api/v2/public/{method}", params=params, timeout=30.0)
            return r.json()["result"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise HarnessError(f"simulator API {method}: {exc}") from exc

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 60.0)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@dataclass
class CollectorProcess:
    """``tickarchive collect --simulator URL`` writing to the harness's QuestDB.

    ``metrics_port`` 0 (what the harness passes): the collector binds any free port and
    names it in its run file under ``local_dir``; ``scrape`` reads it from there, so no
    port is picked here and released for someone else to take first."""

    ws_url: str
    journal_dir: Path
    local_dir: Path
    connections: int
    metrics_port: int
    questdb_host: str
    questdb_http_port: int
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _bound_port: int | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "TICKARCHIVE_QUESTDB__HOST": self.questdb_host,
                "TICKARCHIVE_QUESTDB__HTTP_PORT": str(self.questdb_http_port),
                "TICKARCHIVE_PATHS__LOCAL_DIR": str(self.local_dir),
                "TICKARCHIVE_METRICS__HOST": "127.0.0.1",
                **self.extra_env,
            }
        )
        cmd = [
            *CLI,
            "collect",
            "--simulator",
            self.ws_url,
            "--journal-dir",
            str(self.journal_dir),
            "--connections",
            str(self.connections),
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.proc = _spawn(cmd, self.log, env=env)
        self._bound_port = self.metrics_port or None
        self.starts += 1

    def bound_metrics_port(self) -> int | None:
        """The port this run's exporter listens on (None: not listening yet)."""
        if self._bound_port is None and self.proc is not None:
            for cmd in running(self.local_dir):
                if cmd.name == "collector" and cmd.pid == self.proc.pid and cmd.ports.get("metrics"):
                    self._bound_port = cmd.ports["metrics"]
        return self._bound_port

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (chaos): no drain, no journal close."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 60.0) -> int | None:
        return None if self.proc is None else _stop(self.proc, timeout_s)

    def scrape(self) -> Metrics | None:
        port = self.bound_metrics_port()
        if port is None:
            return None
        try:
            r = _http().get(f"http://127.0.0.1:{port}/metrics", timeout=3.0)
        except httpx.HTTPError:
            return None
        return Metrics.parse(r.text) if r.status_code == 200 else None


@dataclass(frozen=True, slots=True)
class Metrics:
    """The collector metrics the harness reads (sums over labels)."""

    stored_rows: float
    ticks: float
    flush_errors: float
    reconnects: float
    malformed: float
    buffered_rows: float
    backlog_bytes: float
    connections_up: float
    subscribed: float
    backfilled: float
    ack_buckets: tuple[tuple[float, float], ...]
    """(upper bound, cumulative count) of ``tickarchive_ack_lag_seconds``, +Inf last."""
    quarantined: tuple[tuple[str, float], ...] = ()
    """``tickarchive_quarantined_total`` by reason."""

    @classmethod
    def parse(cls, text: str) -> Metrics:
        sums: dict[str, float] = {}
        buckets: list[tuple[float, float]] = []
        quarantined: dict[str, float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "tickarchive_ack_lag_seconds_bucket":
                    buckets.append((float(s.labels["le"]), float(s.value)))
                elif s.name == "tickarchive_quarantined_total":
                    reason = s.labels.get("reason", "")
                    quarantined[reason] = quarantined.get(reason, 0.0) + float(s.value)
                else:
                    sums[s.name] = sums.get(s.name, 0.0) + float(s.value)
        buckets.sort()

        def g(n: str) -> float:
            return sums.get(n, 0.0)

        return cls(
            stored_rows=g("tickarchive_stored_rows_total"),
            ticks=g("tickarchive_ticks_total"),
            flush_errors=g("tickarchive_questdb_flush_errors_total"),
            reconnects=g("tickarchive_reconnects_total"),
            malformed=g("tickarchive_malformed_frames_total"),
            buffered_rows=g("tickarchive_writer_buffered_rows"),
            backlog_bytes=g("tickarchive_journal_backlog_bytes"),
            connections_up=g("tickarchive_connection_up"),
            subscribed=g("tickarchive_subscribed_channels"),
            backfilled=g("tickarchive_backfilled_trades_total"),
            ack_buckets=tuple(buckets),
            quarantined=tuple(sorted(quarantined.items())),
        )


def proc_usage(pid: int) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        p = psutil.Process(pid)
        p.cpu_percent(None)
        return p
    return None


def questdb_export_csv(http_url: str, sql: str, dest: Path) -> None:
    """Stream ``GET /exp`` (CSV with a header) of ``sql`` into ``dest``."""
    try:
        with _http().stream("GET", f"{http_url}/exp", params={"query": sql}, timeout=600.0) as r:
            if r.status_code != 200:
                raise HarnessError(f"QuestDB /exp {sql!r}: HTTP {r.status_code} {r.read()[:200]!r}")
            with open(dest, "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
    except httpx.HTTPError as exc:
        raise HarnessError(f"QuestDB /exp {sql!r}: {exc}") from exc


def questdb_scalar(http_url: str, sql: str) -> Any:
    try:
        r = _http().get(f"{http_url}/exec", params={"query": sql}, timeout=120.0)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise HarnessError(f"QuestDB {sql!r}: {exc}") from exc
    if "error" in body:
        raise HarnessError(f"QuestDB {sql!r}: {body['error']}")
    return body["dataset"][0][0] if body.get("dataset") else None


class QuestDBStarter:
    """Starts QuestDB again (``server.up()``: seconds) off the harness's main loop, so the
    load, the sampling and the other chaos go on meanwhile.

    One long-lived thread does every start: a server spawned with ``die_with_parent``
    (``store.stack.procs``) gets SIGTERM when the *thread* that spawned it ends, so a
    thread per start would kill the QuestDB it just started. ``close()`` ends the thread;
    call it after QuestDB has been stopped."""

    def __init__(self, up: Callable[[], object]) -> None:
        self._up = up
        self._requests: queue.Queue[Callable[[float], None] | None] = queue.Queue(maxsize=1)
        self._idle = threading.Event()
        self._idle.set()
        self._error: TickarchiveError | None = None
        self._thread: threading.Thread | None = None

    def start(self, on_started: Callable[[float], None]) -> None:
        """Start QuestDB in the background; ``on_started(seconds)`` once it is healthy."""
        self.wait()
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="questdb-starter", daemon=True)
            self._thread.start()
        self._idle.clear()
        self._requests.put(on_started)

    def _main(self) -> None:
        while True:
            done = self._requests.get()
            if done is None:
                return
            t0 = time.monotonic()
            try:
                self._up()
                done(time.monotonic() - t0)
            except TickarchiveError as exc:
                self._error = exc
            finally:
                self._idle.set()

    @property
    def busy(self) -> bool:
        """A start is under way."""
        return not self._idle.is_set()

    def wait(self) -> None:
        """Wait for a start under way; raise ``HarnessError`` if it failed."""
        self._idle.wait()
        if self._error is not None:
            exc, self._error = self._error, None
            raise HarnessError(f"QuestDB did not start again: {exc}") from exc

    def close(self) -> None:
        t = self._thread
        if t is not None:
            self._idle.wait()
            self._requests.put(None)
            t.join()
            self._thread = None
