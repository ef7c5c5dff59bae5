"""The ``disk-full`` chaos: the collector's journal lives on a small file system of its
own, which the harness fills to the last block and frees again.

The file system is a real one, so the collector cannot tell it from a full disk: an
ext4 image (``mkfs.ext4 -m 0``: no blocks reserved for root, who we are) mounted
through a loop device, or, where loop devices are not available, a ``tmpfs`` with
``size=``. Mounting needs root (CAP_SYS_ADMIN); without it the mode refuses to run and
says so.

``fill()`` takes every free block (a ``posix_fallocate``d file, then small writes until
``ENOSPC``): ``statvfs`` reports 0 bytes available and every write of the collector fails
with ``ENOSPC``. ``release()`` deletes the filler.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from tickarchive.loadtest.errors import ChaosError

_FILLER: Final = ".chaos-filler"
_CHUNK: Final = 4096


class SmallFilesystem:
    """``mount()`` a file system of ``size_bytes`` at ``mountpoint``; ``unmount()`` it."""

    def __init__(self, mountpoint: Path, image: Path, size_bytes: int) -> None:
        self.mountpoint = mountpoint
        self.image = image
        self.size_bytes = size_bytes
        self.kind = ""
        self.mounted = False
        self.filled_bytes = 0

    def mount(self) -> str:
        if os.geteuid() != 0:
            raise ChaosError(
                "disk-full mounts a small file system for the journal and needs root "
                "(CAP_SYS_ADMIN); run the load test as root or leave the mode out"
            )
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        mkfs = shutil.which("mkfs.ext4")
        if mkfs is not None:
            try:
                with open(self.image, "wb") as f:
                    f.truncate(self.size_bytes)  # sparse
                _run([mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(self.image)])
                _run(["mount", "-o", "loop", str(self.image), str(self.mountpoint)])
                self.kind = "ext4 (loop)"
            except ChaosError as exc:
                errors.append(str(exc))
                self.image.unlink(missing_ok=True)
        if not self.kind:
            try:
                _run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.mountpoint)])
                self.kind = "tmpfs"
            except ChaosError as exc:
                errors.append(str(exc))
                raise ChaosError("disk-full: cannot mount a small file system: " + "; ".join(errors)) from exc
        self.mounted = True
        return self.kind

    def free_bytes(self) -> int:
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        """Take every free block; return the bytes taken."""
        path = self.mountpoint / _FILLER
        before = self.free_bytes()
        taken = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            want = self.free_bytes()
            while want >= _CHUNK:
                try:
                    os.posix_fallocate(fd, taken, want)
                    taken += want
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise ChaosError(f"disk-full: cannot fill {self.mountpoint}: {exc.strerror}") from exc
                    want //= 2
            block = b"\0" * _CHUNK
            while True:  # the last blocks (metadata, a partial extent): until ENOSPC
                try:
                    n = os.write(fd, block)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        break
                    raise ChaosError(f"disk-full: cannot fill {self.mountpoint}: {exc.strerror}") from exc
                taken += n
                if n < _CHUNK:
                    block = block[:1]
        finally:
            os.close(fd)
        self.filled_bytes = before - self.free_bytes()  # (a failed fallocate may keep blocks)
        return self.filled_bytes

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.mountpoint / _FILLER).unlink()
        self.filled_bytes = 0

    def unmount(self) -> None:
        if not self.mounted:
            return
        try:
            _run(["umount", str(self.mountpoint)])
        except ChaosError:
            _run(["umount", "-l", str(self.mountpoint)])  # busy: detach now, free when closed
        self.mounted = False
        self.image.unlink(missing_ok=True)


def _run(cmd: list[str]) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChaosError(f"{cmd[0]}: {exc}") from exc
    if r.returncode != 0:
        raise ChaosError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()[:300]}")
