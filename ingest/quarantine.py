"""The quarantine: what the collector set aside instead of storing, kept, counted and listed.

Nothing is dropped silently; what cannot be stored goes here with the reason:

* ``journal_damage``: bytes of a journal segment that are not a valid record (a flipped
  bit, a torn write), copied aside before anything is cut or skipped;
* ``malformed:<kind>``: a frame the venue's parsers could not read (it also stays in the
  journal and the journal archive);
* ``rejected:<table>``: rows QuestDB refused with a 4xx (it will never accept them), with
  QuestDB's message, the rows and the raw frames they came from;
* ``unencodable:<table>``: rows the ILP encoder cannot write (a value out of range), with
  the raw frame.

Layout, under ``<journal dir>/quarantine/``: ``index.jsonl`` (one JSON object per item,
appended and fsynced) and ``<n>.bin`` (the bytes of item ``n``). The bytes kept are bounded
by ``max_bytes``: past it an item is still indexed, counted and listed, with
``kept: false`` (the raw frames stay in the journal archive either way); once the index
itself would pass ``max_bytes`` too (a flood), items are only counted (``unlisted``) and one
line is logged. ``tickarchive journal quarantine ls`` lists it;
``tickarchive_quarantined_total{reason}`` counts every item, listed or not.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tickarchive.ingest.errors import JournalError
from tickarchive.ingest.journal.files import Damage

log = logging.getLogger(__name__)

INDEX: Final = "index.jsonl"
DIRNAME: Final = "quarantine"
DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Item:
    n: int
    at_us: int
    reason: str
    detail: str
    seqs: tuple[int, int] | None
    size: int
    kept: bool
    meta: dict[str, Any] = field(default_factory=dict)


def quarantine_dir(journal_dir: Path) -> Path:
    return Path(journal_dir) / DIRNAME


PENDING_MAX_BYTES: Final = 64 * 1024 * 1024
"""Bytes of items a full disk may hold back in memory (``Quarantine.add``)."""


class _DiskFull(Exception):
    """Internal: an item could not be written for want of room."""


@dataclass(frozen=True, slots=True)
class _Pending:
    at_us: int
    reason: str
    detail: str
    payload: bytes
    seqs: tuple[int, int] | None
    meta: dict[str, Any]


class Quarantine:
    """Appends items; safe to call from the event loop and from writer threads."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_item: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._on_item = on_item
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"cannot create quarantine directory {self.directory}: {exc.strerror}") from exc
        existing = list(read_items(self.directory))
        self._next = existing[-1].n + 1 if existing else 1
        self._kept_bytes = sum(i.size for i in existing if i.kept)
        index = self.directory / INDEX
        self._index_bytes = index.stat().st_size if index.exists() else 0
        self.unlisted: Counter[str] = Counter()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_bytes = 0
        self._seen: set[str] = {str(i.meta.get("key")) for i in existing if i.meta.get("key")}

    def add(
        self,
        reason: str,
        detail: str,
        payload: bytes,
        seqs: tuple[int, int] | None = None,
        key: str | None = None,
        **meta: Any,
    ) -> Item | None:
        """Set ``payload`` aside under ``reason``; an item with a ``key`` already present
        (the same journal damage met again) is not added twice (returns None).

        On a full disk the item is counted at once and held in memory (at most
        ``PENDING_MAX_BYTES``; past that it is only counted, ``unlisted``) until
        ``retry_pending`` (the collector calls it once a second) or the next ``add``
        finds room: a full disk must not stop the collector, nor lose the item."""
        with self._lock:
            if key is not None:
                if key in self._seen:
                    return None
                self._seen.add(key)
            self.counts[reason] += 1
            if self._on_item is not None:
                self._on_item(reason)
            if self._index_bytes > self.max_bytes:
                if not self.unlisted:
                    log.error("quarantine %s is full (quarantine_max_bytes): further items are only counted",
                              self.directory)
                self.unlisted[reason] += 1
                return None
            entry = _Pending(time.time_ns() // 1000, reason, detail, payload, seqs, {**meta, "key": key})
            self._retry_locked()
            if not self._pending:
                try:
                    return self._write(entry)
                except _DiskFull:
                    pass
            self._hold(entry)  # no room (or older items still waiting: the order is kept)
            return None

    def retry_pending(self) -> int:
        """Write the items a full disk held back, oldest first; return how many are left."""
        with self._lock:
            self._retry_locked()
            return len(self._pending)

    def _retry_locked(self) -> None:
        while self._pending:
            try:
                self._write(self._pending[0])
            except _DiskFull:
                return
            done = self._pending.popleft()
            self._pending_bytes -= len(done.payload)
            log.warning("quarantine %s: item held back by a full disk written (%s)", self.directory, done.reason)

    def _hold(self, entry: _Pending) -> None:
        if self._pending_bytes + len(entry.payload) > PENDING_MAX_BYTES:
            log.error("quarantine %s: disk full and %d items held; %s item counted but not listed: %s",
                      self.directory, len(self._pending), entry.reason, entry.detail[:200])
            self.unlisted[entry.reason] += 1
            return
        if not self._pending:
            log.error("quarantine %s: disk full; items are counted and held in memory until there is room",
                      self.directory)
        self._pending.append(entry)
        self._pending_bytes += len(entry.payload)

    def _write(self, e: _Pending) -> Item:
        """Append one item (its bytes, then its index line, each fsynced); ``_DiskFull``
        when the disk has no room (nothing of it is listed then)."""
        n = self._next
        kept = self._kept_bytes + self._index_bytes + len(e.payload) <= self.max_bytes
        item = Item(n, e.at_us, e.reason, e.detail, e.seqs, len(e.payload), kept, e.meta)
        blob = self.directory / f"{n}.bin"
        line = json.dumps(
            {
                "n": n, "at_us": item.at_us, "reason": e.reason, "detail": e.detail,
                "seqs": list(e.seqs) if e.seqs else None, "size": len(e.payload), "kept": kept, "meta": item.meta,
            },
            separators=(",", ":"),
        )
        index = self.directory / INDEX
        size_before = self._index_bytes
        try:
            if kept:
                with open(blob, "wb") as f:
                    f.write(e.payload)
                    os.fsync(f.fileno())
            with open(index, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                os.fsync(f.fileno())
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise JournalError(f"cannot write to the quarantine {self.directory}: {exc.strerror}") from exc
            with contextlib.suppress(OSError):
                blob.unlink(missing_ok=True)
                if index.exists() and index.stat().st_size > size_before:
                    os.truncate(index, size_before)  # no torn line in front of the next item
            raise _DiskFull from exc
        self._next += 1
        if kept:
            self._kept_bytes += len(e.payload)
        self._index_bytes += len(line) + 1
        return item

    def journal_damage(self, segment: Path, damage: Damage) -> Item | None:
        """Copy a damaged region of a segment aside (once per segment and offset)."""
        try:
            with open(segment, "rb") as f:
                f.seek(damage.offset)
                data = f.read(damage.size)
        except OSError as exc:
            data = b""
            note = f" (could not read it: {exc.strerror})"
        else:
            note = ""
        kind = "torn tail" if damage.tail else "damaged region"
        return self.add(
            "journal_damage",
            f"{damage.segment}: {kind} at offset {damage.offset}, {damage.size} bytes: {damage.reason}{note}",
            data,
            damage.lost_seqs,
            key=f"{damage.segment}@{damage.offset}",
            segment=damage.segment,
            offset=damage.offset,
            tail=damage.tail,
        )


def read_items(directory: Path) -> Iterator[Item]:
    """The items of a quarantine directory, oldest first (a torn last line is skipped)."""
    index = Path(directory) / INDEX
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalError(f"cannot read {index}: {exc.strerror}") from exc
    for line in lines:
        try:
            d = json.loads(line)
            seqs = tuple(d["seqs"]) if d.get("seqs") else None
            yield Item(
                int(d["n"]), int(d["at_us"]), str(d["reason"]), str(d["detail"]),
                (int(seqs[0]), int(seqs[1])) if seqs else None, int(d["size"]), bool(d["kept"]),
                dict(d.get("meta") or {}),
            )
        except (ValueError, KeyError, TypeError, IndexError):
            continue
