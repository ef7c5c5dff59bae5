"""``file://DIR``: the archive in a local directory.

Each write goes to a hidden temporary file (``.<name>.<random>.tmp``) in the final
directory, is fsynced, then renamed over the final name, so a half-written file is never
visible under its final key.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tickarchive.archive.errors import InvalidArgument, ObjectNotFound, TargetError
from tickarchive.archive.target import Fetched, ObjectInfo


class LocalTarget:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidArgument(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _write_atomically(self, key: str, fill: str, source: Path | bytes) -> ObjectInfo:
        final = self._path(key)
        tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return ObjectInfo(key, final.stat().st_size, None)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TargetError(f"{self.url}: cannot write {key} ({fill}): {exc}") from exc

    def put_file(self, local: Path, key: str, sha1: str) -> ObjectInfo:
        return self._write_atomically(key, f"from {local}", local)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._write_atomically(key, f"{len(data)} bytes", data)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(key, self.url) from None
        except OSError as exc:
            raise TargetError(f"{self.url}: cannot read {key}: {exc}") from exc

    @contextmanager
    def fetch(self, key: str) -> Iterator[Fetched]:
        info = self.stat(key)
        if info is None:
            raise ObjectNotFound(key, self.url)
        yield Fetched(self._path(key), info)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetError(f"{self.url}: cannot stat {key}: {exc}") from exc
        return ObjectInfo(key, st.st_size, None)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(folder) if folder else base
        if not start.is_dir():
            return
        try:
            paths = sorted(p for p in start.rglob("*") if p.is_file())
        except OSError as exc:
            raise TargetError(f"{self.url}: cannot list: {exc}") from exc
        for p in paths:
            key = p.relative_to(base).as_posix()
            if key.startswith(prefix) and not p.name.endswith(".tmp"):
                yield ObjectInfo(key, p.stat().st_size, None)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise TargetError(f"{self.url}: cannot delete {key}: {exc}") from exc

    def remove_temporaries(self, prefix: str) -> int:
        """Delete leftover ``*.tmp`` files of crashed writes under ``prefix``; returns how many."""
        start = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not start.is_dir():
            return 0
        n = 0
        for p in start.rglob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
