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
        (the same journal damage met again) is not added twice (returns None)."""
        with self._lock:
            if key is not None:
                if key in self._seen:
                    return None
                self._seen.add(key)
            self.counts[reason] += 1
            if self._index_bytes > self.max_bytes:
                if not self.unlisted:
                    log.error("quarantine %s is full (quarantine_max_bytes): further items are only counted",
                              self.directory)
                self.unlisted[reason] += 1
                if self._on_item is not None:
                    self._on_item(reason)
                return None
            n = self._next
            self._next += 1
            kept = self._kept_bytes + self._index_bytes + len(payload) <= self.max_bytes
            item = Item(n, time.time_ns() // 1000, reason, detail, seqs, len(payload), kept, {**meta, "key": key})
            try:
                if kept:
                    blob = self.directory / f"{n}.bin"
                    with open(blob, "wb") as f:
                        f.write(payload)
                        os.fsync(f.fileno())
                    self._kept_bytes += len(payload)
                line = json.dumps(
                    {
                        "n": n, "at_us": item.at_us, "reason": reason, "detail": detail,
                        "seqs": list(seqs) if seqs else None, "size": len(payload), "kept": kept, "meta": item.meta,
                    },
                    separators=(",", ":"),
                )
                with open(self.directory / INDEX, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    os.fsync(f.fileno())
                self._index_bytes += len(line) + 1
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise JournalError(f"cannot write to the quarantine {self.directory}: {exc.strerror}") from exc
                # a full disk: the item is still counted (and its frames are in the journal);
                # a full disk must not stop the collector
                log.error("quarantine %s: disk full, item %d (%s: %s) counted but not listed",
                          self.directory, n, reason, detail[:200])
                self.unlisted[reason] += 1
                if self._on_item is not None:
                    self._on_item(reason)
                return None
        if self._on_item is not None:
            self._on_item(reason)
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
