"""Manifests: what an archived (table, month) or journal day holds, and the index.

A manifest is the commit record of an export: a month is *archived* exactly when its
manifest exists at the target. It lists every data file with its row count, size,
SHA-256, SHA-1 and ts range, and the source row count the files were checked against.
Encoded as indented JSON; decoding validates every field (``ManifestError`` otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import msgspec

from tickarchive.archive.errors import ManifestError

_S = TypeVar("_S", bound=msgspec.Struct)

MANIFEST_VERSION = 1
"""Version of the manifest format itself."""


class FileEntry(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    """Key of the file relative to the target root (Hive path)."""
    rows: int
    bytes: int
    sha256: str
    sha1: str
    min_ts_us: int | None
    max_ts_us: int | None
    row_groups: int


class MonthManifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int
    schema_version: int
    """Version of the Parquet layout (``archive.parquet_files.SCHEMA_VERSION``)."""
    schema_fingerprint: str
    """SHA-256 of the table's column names, types and nullability."""
    table: str
    month: str
    generation: int
    """0 for the first export; +1 each time late rows force a re-export."""
    sort_columns: tuple[str, ...]
    compression: str
    files: tuple[FileEntry, ...]
    total_rows: int
    total_bytes: int
    min_ts_us: int | None
    max_ts_us: int | None
    source_rows: int
    """Row count the source reported for this month; equal to ``total_rows``."""
    created_at: str
    content_checksum: str | None = None
    """Order-independent checksum of every column of every row written, 16 hex digits
    (``tickarchive.store.checksum``, the rollover's definition); ``archive verify``
    recomputes it from the files and warm retention compares the warm month with it.
    ``None`` in manifests written before it existed."""


class JournalSegment(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    path: str
    original_bytes: int
    original_sha256: str
    bytes: int
    sha256: str
    sha1: str


class JournalManifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int
    day: str
    compression: str
    segments: tuple[JournalSegment, ...]
    total_original_bytes: int
    total_bytes: int
    created_at: str


class IndexMonth(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    month: str
    generation: int
    rows: int
    files: int
    bytes: int
    manifest: str
    created_at: str


class IndexJournalDay(msgspec.Struct, frozen=True, kw_only=True):
    day: str
    segments: int
    original_bytes: int
    bytes: int
    manifest: str
    created_at: str


class Index(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int = MANIFEST_VERSION
    updated_at: str = ""
    months: tuple[IndexMonth, ...] = ()
    journal_days: tuple[IndexJournalDay, ...] = ()

    def with_month(self, entry: IndexMonth, now: dt.datetime) -> Index:
        others = [m for m in self.months if (m.table, m.month) != (entry.table, entry.month)]
        months = tuple(sorted([*others, entry], key=lambda m: (m.table, m.month)))
        return msgspec.structs.replace(self, months=months, updated_at=iso(now))

    def with_journal_day(self, entry: IndexJournalDay, now: dt.datetime) -> Index:
        others = [d for d in self.journal_days if d.day != entry.day]
        days = tuple(sorted([*others, entry], key=lambda d: d.day))
        return msgspec.structs.replace(self, journal_days=days, updated_at=iso(now))


class VerifiedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Written by a successful ``verify``: which manifest (by hash) verified, and when."""

    table: str
    month: str
    manifest_sha256: str
    files: int
    rows: int
    verified_at: str


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def encode(obj: msgspec.Struct) -> bytes:
    out: bytes = msgspec.json.format(msgspec.json.encode(obj), indent=2) + b"\n"
    return out


def decode(data: bytes, kind: type[_S], where: str) -> _S:
    try:
        obj = msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:  # ValidationError derives from DecodeError
        raise ManifestError(f"{where}: not a valid {kind.__name__}: {exc}") from None
    version = getattr(obj, "manifest_version", MANIFEST_VERSION)
    if version > MANIFEST_VERSION:
        raise ManifestError(f"{where}: manifest version {version} is newer than this code ({MANIFEST_VERSION})")
    return obj
