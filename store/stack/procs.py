"""Process plumbing shared by the server managers: pid files, ports, spawning, stopping.

A pid file holds ``<pid> <create_time>``; a process counts as ours only when both match,
so a pid reused by an unrelated process after a crash is recognised as a stale file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from tickarchive.store.errors import PortInUseError, ServerStopError, StackError


def env_name(setting: str) -> str:
    """``questdb.http_port`` -> ``TICKARCHIVE_QUESTDB__HTTP_PORT``."""
    return "TICKARCHIVE_" + "__".join(setting.split(".")).upper()


@dataclass(frozen=True, slots=True)
class PidFile:
    path: Path

    def write(self, pid: int) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            created = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{pid} {created:.3f}\n")
        tmp.replace(self.path)

    def read(self) -> tuple[int, float] | None:
        try:
            text = self.path.read_text().split()
        except FileNotFoundError:
            return None
        try:
            return int(text[0]), float(text[1])
        except (IndexError, ValueError):
            return (0, 0.0)  # garbage: treated as stale

    def process(self) -> psutil.Process | None:
        """The live process the file names, or None (absent or stale file)."""
        entry = self.read()
        if entry is None or entry[0] <= 0:
            return None
        pid, created = entry
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return proc

    def is_stale(self) -> bool:
        return self.path.exists() and self.process() is None

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def port_holder(port: int) -> str:
    """`` by pid N (name)`` of the process listening on ``port``, or empty."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    name = psutil.Process(conn.pid).name()
                except psutil.Error:
                    name = "?"
                return f" by pid {conn.pid} ({name})"
    except psutil.Error:
        pass
    return ""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def require_free_port(host: str, port: int, setting: str) -> None:
    """Raise ``PortInUseError`` naming the port and the setting that chose it."""
    if not port_is_free(host, port):
        raise PortInUseError(
            f"port {host}:{port} is already in use{port_holder(port)}; it is setting {setting} "
            f"({env_name(setting)}): stop the other server or choose another port"
        )


def port_conflict(host: str, port: int, change: str) -> str:
    """The message for a port another process holds: who holds it, and what to change
    (``change``: the setting and the flag that chose the port)."""
    return f"port {host}:{port} is already in use{port_holder(port)}; {change}, or stop the other process"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and experiments)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the spawning thread's process dies (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def spawn(
    cmd: Sequence[str],
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, stdout+stderr appended to ``log_path``.

    ``die_with_parent`` (test servers): the child gets SIGTERM if this process dies, even
    by SIGKILL, so an aborted test session leaves no server behind.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        if user is not None:
            os.fchown(log.fileno(), user, group if group is not None else -1)
        try:
            return subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
                user=user,
                group=group,
                extra_groups=[] if user is not None else None,
            )
        except OSError as exc:
            raise StackError(f"cannot start {cmd[0]}: {exc.strerror}") from None


def stop_process(proc: psutil.Process, what: str, timeout_s: float = 30.0) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Raises ``ServerStopError`` if it survives."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout_s)
        return
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        pass
    try:
        proc.kill()
        proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        raise ServerStopError(f"{what} (pid {proc.pid}) survived SIGKILL") from None


def reap(popen: subprocess.Popen[bytes]) -> None:
    """Collect a child's exit status if it has exited (no zombies in long test sessions)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=0)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return f"last lines of {path}:\n    " + "\n    ".join(tail)


def wait_until(
    ready: Callable[[], bool],
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    interval_s: float = 0.1,
) -> str:
    """Poll ``ready`` until true. Returns ``"ready"``, ``"died"`` or ``"timeout"``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if ready():
            return "ready"
        if not alive():
            return "ready" if ready() else "died"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(interval_s)


def dir_size_bytes(path: Path) -> int | None:
    """Bytes of all regular files under ``path`` (None when it does not exist)."""
    if not path.exists():
        return None
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total
