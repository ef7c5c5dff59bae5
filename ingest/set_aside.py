"""What the collector sets aside into its quarantine (``tickarchive.ingest.quarantine``):
damaged journal regions, frames no parser reads, and rows QuestDB refuses or the encoder
cannot write — each with its raw frames, found again in the journal. docs/journal.md.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path

from tickarchive.domain import EncodedRows, Event
from tickarchive.ingest.connection import now_us
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.journal.capture import format_line
from tickarchive.ingest.journal.files import Damage
from tickarchive.ingest.quarantine import Quarantine
from tickarchive.store.ilp import row_bytes
from tickarchive.store.writer_contract import RecordView, Refused, Rows
from tickarchive.venue import Malformed

log = logging.getLogger(__name__)


def journal_damaged(quarantine: Quarantine, segment: Path, damage: Damage) -> None:
    """A damaged region of the journal (at start-up or met by a read): copied aside."""
    if quarantine.journal_damage(segment, damage) is not None and not damage.tail:
        lost = damage.lost_seqs
        log.error(
            "journal: damaged region in %s at offset %d (%d bytes: %s)%s; skipped, copied to %s",
            damage.segment, damage.offset, damage.size, damage.reason,
            f", records {lost[0]}..{lost[1]} lost" if lost else "", quarantine.directory,
        )


def malformed(quarantine: Quarantine, journal: Journal, connection: str, seq: int, bad: Malformed) -> None:
    """A frame the venue's parser cannot read: the whole frame from the journal (the
    output carries only its first 200 bytes)."""
    frame = bad.sample
    if seq:
        for rec in journal.read_from(seq):
            frame = rec.frame
            break
    quarantine.add(
        f"malformed:{bad.key}", f"{connection} seq {seq}: {bad.detail[:300]}",
        format_line(journal.last_recv_ts_us or now_us(), frame), (seq, seq) if seq else None,
    )


def refused(
    quarantine: Quarantine, journal: Journal, decode: Callable[[RecordView], Rows], refused: Refused
) -> None:
    """Rows the writer set aside: with their raw frames, found again in the journal."""
    lo, hi = refused.seqs
    wanted_rows = {row for row, _msg in refused.rows}
    wanted_events = [ev for ev, _why in refused.events]
    frames: list[bytes] = []
    for rec in journal.read_from(lo):
        if rec.seq > hi:
            break
        if _holds(decode(rec), wanted_rows, wanted_events):
            frames.append(format_line(rec.recv_ts_us, rec.frame))
    why = refused.rows[0][1] if refused.rows else refused.events[0][1]
    count = len(refused.rows) or len(refused.events)
    quarantine.add(
        f"{refused.kind}:{refused.table}",
        f"{count} row(s) of journal records {lo}..{hi}: {why.splitlines()[0][:300]}",
        b"".join(frames),
        refused.seqs,
        rows=[base64.b64encode(r).decode() for r, _m in refused.rows][:100],
        events=[repr(e)[:500] for e in wanted_events][:100],
        frames=len(frames),
    )


def _holds(rows: Rows, wanted_rows: set[bytes], wanted_events: list[Event]) -> bool:
    """A journal record's rows include one of the refused ILP rows or events."""
    if wanted_events and any(r in wanted_events for r in rows):
        return True
    if not wanted_rows:
        return False
    for r in rows:
        if type(r) is EncodedRows:
            if any(w in r.payload for w in wanted_rows):
                return True
        else:
            row = row_bytes(r)  # type: ignore[arg-type]
            if row is not None and row in wanted_rows:  # None: an unencodable row (set aside on its own)
                return True
    return False
