"""The API's local copies of archive files: bounded, verified, confined to their folder.

* **Paths from manifests are not trusted.** ``safe_key`` accepts only the archive layout's
  own data keys (``table=<table>/month=<YYYY-MM>/part-...parquet`` of the manifest's
  table and month, no ``..``, no absolute path, no backslash, nothing else); the file's
  local path is then checked to resolve inside the cache folder. Anything else raises
  ``UnsafePath`` and the query answers 503 (the manifest is logged).
* **Verified on entry.** A file enters the cache only when its SHA-256 equals the
  manifest's (a download, or a file found in the folder from an earlier process: both
  are hashed before first use in this process; a mismatch is deleted and fetched again
  once, then refused).
* **Bounded.** The folder holds at most ``archive.cache_max_bytes``; the least recently
  used files go first, never one a running query holds (``pin``/``unpin``).
* **Its own path.** ``archive.cache_dir`` must not be inside the journal's folder (it would
  compete with the journal for the disk the collector needs); ``check_location`` refuses
  that and warns when both share a filesystem.

A small JSON index beside the files (``_stats.json``) remembers each file's first and last
instrument (from its Parquet row-group statistics), kept after eviction, so a query for
one instrument fetches only the files whose instrument range can hold it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tickarchive.api.errors import StoreUnavailable
from tickarchive.archive.hashing import file_digests

log = logging.getLogger(__name__)

_KEY = re.compile(r"^table=([a-z0-9_]+)/month=(\d{4}-\d{2})/part-(?:g[0-9]+-)?[0-9]{4,6}\.parquet$")
STATS_FILE = "_stats.json"


class UnsafePath(StoreUnavailable):
    """A manifest names a file outside the archive layout."""


def safe_key(key: str, table: str, month: str) -> str:
    """``key`` if it is a data file of (table, month) in the archive layout, else ``UnsafePath``."""
    m = _KEY.match(key)
    if m is None or m.group(1) != table or m.group(2) != month or "\\" in key:
        raise UnsafePath("archive: a manifest names an unexpected file", f"archive: unsafe manifest path {key!r:.200}")
    return key


def inside(root: Path, key: str) -> Path:
    """``root/key``, refused unless it resolves inside ``root``."""
    path = (root / key).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UnsafePath("archive: a manifest names an unexpected file", f"archive: {key!r:.200} leaves {root}")
    return path


def check_location(cache_dir: Path, journal_dir: Path) -> None:
    """Refuse a cache inside the journal folder; warn when they share a filesystem."""
    cache, journal = cache_dir.resolve(), journal_dir.resolve()
    if cache == journal or cache.is_relative_to(journal):
        raise StoreUnavailable(
            "archive.cache_dir is inside the journal folder",
            f"archive.cache_dir {cache} is inside the journal folder {journal}: give it its own path",
        )
    try:
        same = cache_dir.exists() and journal_dir.exists() and os.stat(cache).st_dev == os.stat(journal).st_dev
    except OSError:
        return
    if same:
        log.warning(
            "archive.cache_dir %s is on the journal's filesystem; bounded by archive.cache_max_bytes, but a disk of "
            "its own keeps the journal's free space for the collector", cache,
        )


@dataclass(slots=True)
class _Entry:
    size: int
    pins: int = 0


class FileCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, _Entry] = OrderedDict()
        """Verified files in this process, least recently used first."""
        self._bytes = 0
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._stats: dict[str, tuple[str | None, str | None]] | None = None
        self.evictions = 0
        self.verified = 0
        self._found: OrderedDict[str, int] = OrderedDict()
        """Files left by earlier processes, not verified yet (oldest first): counted, evicted first."""
        self._adopt()

    def _adopt(self) -> None:
        if not self.root.is_dir():
            return
        found = []
        for path in self.root.rglob("*.parquet"):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((st.st_mtime, path.relative_to(self.root).as_posix(), st.st_size))
        for _, key, size in sorted(found):
            self._found[key] = size
            self._bytes += size

    # -- instrument ranges --------------------------------------------------------------
    def _load_stats(self) -> dict[str, tuple[str | None, str | None]]:
        if self._stats is None:
            try:
                raw = json.loads((self.root / STATS_FILE).read_text())
                self._stats = {k: (v[0], v[1]) for k, v in raw.items()}
            except (OSError, ValueError, TypeError, IndexError, AttributeError):
                self._stats = {}
        return self._stats

    def instrument_range(self, sha256: str) -> tuple[str | None, str | None] | None:
        with self._lock:
            return self._load_stats().get(sha256)

    def _record_range(self, sha256: str, path: Path) -> None:
        lo: str | None = None
        hi: str | None = None
        try:
            meta = pq.ParquetFile(path).metadata
            idx = meta.schema.names.index("instrument")
            for g in range(meta.num_row_groups):
                st = meta.row_group(g).column(idx).statistics
                if st is None or not st.has_min_max:
                    return
                mn, mx = str(st.min), str(st.max)
                lo = mn if lo is None or mn < lo else lo
                hi = mx if hi is None or mx > hi else hi
        except (OSError, ValueError):
            return
        with self._lock:
            stats = self._load_stats()
            stats[sha256] = (lo, hi)
            tmp = self.root / f".{STATS_FILE}.tmp"
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(stats))
                tmp.replace(self.root / STATS_FILE)
            except OSError as exc:
                log.warning("archive cache: cannot write %s: %s", STATS_FILE, exc)

    # -- files ----------------------------------------------------------------------------
    def get(self, key: str, sha256: str, size: int, fetch: Callable[[Path], None]) -> Path:
        """The verified local copy of ``key``, pinned (``unpin`` it when done)."""
        path = inside(self.root, key)
        with self._lock:
            hit = self._files.get(key)
            if hit is not None:
                hit.pins += 1
                self._files.move_to_end(key)
                return path
            lock = self._fetching.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                hit = self._files.get(key)
                if hit is not None:
                    hit.pins += 1
                    self._files.move_to_end(key)
                    return path
            with self._lock:
                leftover = self._found.pop(key, None)
                if leftover is not None:
                    self._bytes -= leftover
            if not (path.exists() and self._matches(path, sha256)):
                self._make_room(size)
                self._download(key, path, sha256, fetch)
            self._record_range(sha256, path)
            with self._lock:
                entry = self._files[key] = _Entry(path.stat().st_size, pins=1)
                self._bytes += entry.size
                self._fetching.pop(key, None)
            self.verified += 1
            return path

    def unpin(self, key: str) -> None:
        with self._lock:
            e = self._files.get(key)
            if e is not None and e.pins > 0:
                e.pins -= 1
        self._make_room(0)

    def _matches(self, path: Path, sha256: str) -> bool:
        try:
            ok = file_digests(path).sha256 == sha256
        except OSError:
            ok = False
        if not ok:
            log.warning("archive cache: %s does not match its manifest's SHA-256; fetching it again", path)
            path.unlink(missing_ok=True)
        return ok

    def _download(self, key: str, path: Path, sha256: str, fetch: Callable[[Path], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fetch(tmp)
            if file_digests(tmp).sha256 != sha256:
                raise StoreUnavailable(
                    "archive: a file fails its checksum", f"archive: {key} fails its SHA-256 check (not cached)"
                )
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def _make_room(self, incoming: int) -> None:
        victims: list[tuple[str, int]] = []
        with self._lock:
            while self._found and self._bytes + incoming > self.max_bytes:
                key, size = self._found.popitem(last=False)
                self._bytes -= size
                victims.append((key, size))
            for key, e in list(self._files.items()):
                if self._bytes + incoming <= self.max_bytes:
                    break
                if e.pins:
                    continue
                del self._files[key]
                self._bytes -= e.size
                victims.append((key, e.size))
        for key, _size in victims:
            (self.root / key).unlink(missing_ok=True)
            self.evictions += 1

    @property
    def bytes(self) -> int:
        return self._bytes
