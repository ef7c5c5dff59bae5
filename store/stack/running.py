"""The project's own long-running commands — collector, API, simulator, demo — as
``tickarchive status`` shows them beside the stack's servers.

Each command, once it listens, writes ``<paths.local_dir>/run/<name>-<pid>.json`` (its pid
and the process's create time, so a reused pid is not mistaken for it, its address and
ports, and a line of detail) and removes the file when it exits. A file whose process is
gone (a SIGKILL, a crash) is stale: ``running()`` skips and removes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psutil

from tickarchive.settings import Settings
from tickarchive.store.stack.status import ComponentStatus, State

RUN_DIR = "run"


@dataclass(frozen=True, slots=True)
class RunningCommand:
    name: str
    """collector, api, simulator, demo"""
    pid: int
    created: float
    """the process's create time (psutil), to tell a reused pid apart"""
    host: str
    ports: dict[str, int] = field(default_factory=dict)
    """what each port serves -> port"""
    detail: str = ""
    started_at: str = ""

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            same = abs(proc.create_time() - self.created) <= 0.05
            return bool(same and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    @property
    def address(self) -> str:
        if not self.ports:
            return "-"
        return ", ".join(f"{self.host}:{port} ({what})" for what, port in self.ports.items())

    def status(self) -> ComponentStatus:
        return ComponentStatus(self.name, State.UP, self.address, pid=self.pid, detail=self.detail)


def run_dir(local_dir: Path) -> Path:
    return local_dir / RUN_DIR


def _path(local_dir: Path, name: str, pid: int) -> Path:
    return run_dir(local_dir) / f"{name}-{pid}.json"


@contextlib.contextmanager
def registered(
    local_dir: Path, name: str, host: str, ports: dict[str, int], detail: str = ""
) -> Iterator[RunningCommand]:
    """Record this process as running ``name`` until the block ends."""
    pid = os.getpid()
    entry = RunningCommand(
        name, pid, psutil.Process(pid).create_time(), host, dict(ports), detail,
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    path = _path(local_dir, name, pid)
    with contextlib.suppress(OSError):  # status is a convenience: never fail the command for it
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(entry)) + "\n")
        tmp.replace(path)
    try:
        yield entry
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def record_ports(local_dir: Path, entry: RunningCommand, ports: dict[str, int]) -> RunningCommand:
    """Rewrite ``entry``'s run file with ``ports`` added (a port bound after start-up, such as
    ``--metrics-port 0``'s); the updated entry."""
    updated = replace(entry, ports={**entry.ports, **ports})
    path = _path(local_dir, entry.name, entry.pid)
    with contextlib.suppress(OSError):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(updated)) + "\n")
        tmp.replace(path)
    return updated


def running(local_dir: Path) -> list[RunningCommand]:
    """Every registered command still running (stale files are removed), by name and pid."""
    out: list[RunningCommand] = []
    directory = run_dir(local_dir)
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            entry = RunningCommand(
                str(raw["name"]), int(raw["pid"]), float(raw["created"]), str(raw["host"]),
                {str(k): int(v) for k, v in dict(raw.get("ports", {})).items()}, str(raw.get("detail", "")),
                str(raw.get("started_at", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours
        if entry.alive():
            out.append(entry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    out.sort(key=lambda e: (e.name, e.pid))
    return out


def left_running(settings: Settings, exclude_pids: tuple[int, ...] = ()) -> list[str]:
    """What a command that is ending leaves running (the stack's servers we started, other
    registered commands), each with how to stop it; empty when nothing is."""
    from tickarchive.store.errors import StackError
    from tickarchive.store.stack.stack import Stack

    lines = []
    try:
        servers = [s for s in Stack(settings).status() if s.state in (State.UP, State.UNHEALTHY)]
    except StackError:
        servers = []
    if servers:
        listed = "; ".join(f"{s.name} (pid {s.pid}, {s.address})" for s in servers)
        lines.append(f"still running: {listed}")
        lines.append("  stop them with `make down` (or `tickarchive down`); `make status` shows them")
    skip = {os.getpid(), *exclude_pids}
    for c in running(settings.paths.local_dir):
        if c.pid not in skip:
            lines.append(f"still running: {c.name} (pid {c.pid}, {c.address}): Ctrl-C where it runs, or kill {c.pid}")
    return lines
