"""The ``journal-corrupt`` chaos: flip bytes in the collector's journal while it runs.

Two records are damaged in the newest *sealed* segment that holds records past the
checkpoint (else the newest sealed one) and two in the *active* segment, each pair
being one record whose **length field** gets a high bit flipped (it then claims to run
past the end of the file: before finding 1 of the issue this cut everything after it as a
"torn tail") and one whose **payload** gets a byte flipped (its CRC fails). Only records
of exchange connections that carry market rows are picked, past the checkpoint when
there are any, and in the active segment at least ``TAIL_MARGIN_BYTES`` before its end
(valid records follow: the damage must be skipped, not cut).

Before flipping, each record is read intact and its keys saved
(``quarantine_keys.CorruptedRecord``): the reconciliation counts a sent row of such a
record as quarantined when the collector's quarantine lists the damaged region.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from tickarchive.loadtest.errors import ChaosError
from tickarchive.loadtest.journal_files import HEADER_SIZE, SIDE_CONNECTIONS, RawRecord, read_checkpoint, read_records
from tickarchive.loadtest.journal_files import segments as list_segments
from tickarchive.loadtest.quarantine_keys import CorruptedRecord, frame_keys

TAIL_MARGIN_BYTES: Final = 64 * 1024
"""Bytes of the active segment after the last record the chaos may damage."""
_LENGTH_HIGH_BYTE: Final = 7
"""Offset in a record header of the most significant byte of its u32 length."""


def ready(journal_dir: Path) -> bool:
    """The journal has a sealed segment and an active one long enough to damage."""
    segs = list_segments(journal_dir)
    return len(segs) >= 2 and segs[-1].stat().st_size > 2 * TAIL_MARGIN_BYTES


def _candidates(path: Path, acked: int, margin: int) -> list[RawRecord]:
    data = path.read_bytes()  # a snapshot: the active segment keeps growing meanwhile
    limit = len(data) - margin
    recs = [
        r
        for r in read_records(data)
        if r.offset + r.size <= limit and r.connection not in SIDE_CONNECTIONS and frame_keys(r.frame)
    ]
    unacked = [r for r in recs if r.seq > acked]
    return unacked if len(unacked) >= 2 else recs


def corrupt(journal_dir: Path) -> list[CorruptedRecord]:
    """Damage two records of a sealed segment and two of the active one (see the module
    docstring); return them as they were."""
    segs = list_segments(journal_dir)
    if len(segs) < 2:
        raise ChaosError(f"journal-corrupt: {journal_dir} has no sealed segment yet")
    acked = read_checkpoint(journal_dir)
    sealed = segs[:-1]
    # the newest sealed segment with a record past the checkpoint, else the newest sealed
    pick = next((p for p in reversed(sealed) if _last_seq(p) > acked), sealed[-1])
    out: list[CorruptedRecord] = []
    for path, margin in ((pick, 0), (segs[-1], TAIL_MARGIN_BYTES)):
        recs = _candidates(path, acked, margin)
        if len(recs) < 2:
            raise ChaosError(f"journal-corrupt: {path.name} has fewer than 2 market records to damage")
        a = recs[len(recs) // 3]
        b = recs[(2 * len(recs)) // 3]
        if a.seq == b.seq:
            b = recs[-1]
        out.append(_flip(path, a, "length"))
        out.append(_flip(path, b, "payload"))
    return out


def _last_seq(path: Path) -> int:
    last = 0
    for r in read_records(path.read_bytes()):
        last = r.seq
    return last


def _flip(path: Path, rec: RawRecord, what: str) -> CorruptedRecord:
    if what == "length":
        at = rec.offset + _LENGTH_HIGH_BYTE
        mask = 0x40  # + 1 GiB: the record claims to run far past the end of the file
    else:
        conn_len = len(rec.connection.encode())
        at = rec.offset + HEADER_SIZE + conn_len + len(rec.frame) // 2
        mask = 0x01
    fd = os.open(path, os.O_RDWR)  # not O_APPEND: pwrite must land where it is told
    try:
        old = os.pread(fd, 1, at)
        os.pwrite(fd, bytes([old[0] ^ mask]), at)
        os.fsync(fd)
    finally:
        os.close(fd)
    return CorruptedRecord(path.name, rec.offset, rec.size, rec.seq, what, tuple(frame_keys(rec.frame)))
