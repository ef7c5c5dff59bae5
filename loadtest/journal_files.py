"""The collector's on-disk formats as the harness reads them: journal segments, the
checkpoint, the quarantine (docs/journal.md).

The harness drives the collector from outside (its CLI, its metrics, the files it
documents), and the layers keep ``loadtest`` apart from ``ingest``; so these readers are
written from the documentation, not imported from the collector. That makes them a
second, independent reading of the formats: if the collector wrote something the docs do
not describe, the harness would notice.

Journal record (little endian)::

    0 magic b"TJ" | 2 version 1 | 3 conn_len u8 | 4 length u32 | 8 seq u64
    16 recv_ts_us i64 | 24 crc u32 (CRC-32 of bytes 0..23 + connection + payload)
    28 connection | 28+conn_len payload

Quarantine: ``<journal>/quarantine/index.jsonl`` (one JSON object per item: ``n``,
``at_us``, ``reason``, ``detail``, ``seqs``, ``size``, ``kept``, ``meta``) and ``<n>.bin``
(the item's bytes; frames as replay lines ``<seconds>.<micros>: <frame>\\n``).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

HEADER: Final = struct.Struct("<2sBBIQqI")
HEADER_SIZE: Final = HEADER.size
MAGIC: Final = b"TJ"
SEGMENT_SUFFIX: Final = ".tjl"
CHECKPOINT: Final = "checkpoint.json"
QUARANTINE: Final = "quarantine"
SIDE_CONNECTIONS: Final = frozenset({"collector", "rest"})
"""Connection ids of records the collector writes itself (gap rows, backfills) or fetched
over REST: not exchange frames."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    offset: int
    size: int
    seq: int
    recv_ts_us: int
    connection: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    n: int
    reason: str
    detail: str
    seqs: tuple[int, int] | None
    size: int
    kept: bool
    meta: dict[str, Any] = field(default_factory=dict)


def segments(journal_dir: Path) -> list[Path]:
    return sorted(journal_dir.glob(f"*{SEGMENT_SUFFIX}"))


def read_records(data: bytes) -> Iterator[RawRecord]:
    """The valid records of a segment's bytes, from the start up to the first one that is
    not (a torn tail, damage): the harness reads segments nobody damaged yet."""
    offset = 0
    end = len(data)
    while end - offset >= HEADER_SIZE:
        magic, version, conn_len, length, seq, ts, crc = HEADER.unpack_from(data, offset)
        stop = offset + HEADER_SIZE + conn_len + length
        if magic != MAGIC or version != 1 or stop > end:
            return
        body = offset + HEADER_SIZE
        conn = data[body : body + conn_len]
        frame = data[body + conn_len : stop]
        if zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(data[offset : offset + 24]))) != crc:
            return
        yield RawRecord(offset, stop - offset, seq, ts, conn.decode("utf-8", "replace"), frame)
        offset = stop


def read_checkpoint(journal_dir: Path) -> int:
    """The acknowledged seq (0: none yet)."""
    try:
        doc = json.loads((journal_dir / CHECKPOINT).read_bytes())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return 0
    seq = doc.get("acked_seq") if isinstance(doc, dict) else None
    return seq if isinstance(seq, int) else 0


def quarantine_items(journal_dir: Path) -> Iterator[QuarantineItem]:
    """The quarantine's index, oldest first (a torn last line is skipped)."""
    try:
        lines = (journal_dir / QUARANTINE / "index.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            d = json.loads(line)
            s = d.get("seqs")
            yield QuarantineItem(
                int(d["n"]), str(d["reason"]), str(d.get("detail", "")),
                (int(s[0]), int(s[1])) if s else None, int(d.get("size", 0)), bool(d.get("kept")),
                dict(d.get("meta") or {}),
            )
        except (ValueError, KeyError, TypeError, IndexError):
            continue


def quarantine_blob(journal_dir: Path, item: QuarantineItem) -> bytes | None:
    if not item.kept:
        return None
    try:
        return (journal_dir / QUARANTINE / f"{item.n}.bin").read_bytes()
    except OSError:
        return None


def replay_frames(blob: bytes) -> Iterator[bytes]:
    """The frames of replay lines (``<seconds>.<micros>: <frame>``)."""
    for line in blob.split(b"\n"):
        head, sep, frame = line.partition(b": ")
        if sep and head[:1].isdigit() and frame:
            yield frame
