"""The journal: append-only local segments of every raw frame, the collector's source of
truth (docs/journal.md). Imports only the core and ``tickarchive.ingest.errors``.

* ``format``   the record format (length, CRC-32, seq, receive time, connection, frame);
* ``files``    the directory on disk: segments, checkpoint, scans, reports;
* ``writer``   ``Journal``: the single writer (lock, tail repair, append, fsync, checkpoint);
* ``reader``   ``JournalReader``: read-only access (read_from, verify, export);
* ``capture``  the text line format of exports and recorded captures (replay input);
* ``side``     side records: gap rows and backfilled trades the collector journals itself.
"""

from tickarchive.ingest.journal.files import CHECKPOINT_FILE, RecoveryReport, SegmentInfo, VerifyReport
from tickarchive.ingest.journal.format import Record
from tickarchive.ingest.journal.reader import JournalReader
from tickarchive.ingest.journal.writer import Journal, JournalStats

__all__ = [
    "CHECKPOINT_FILE",
    "Journal",
    "JournalReader",
    "JournalStats",
    "Record",
    "RecoveryReport",
    "SegmentInfo",
    "VerifyReport",
]
