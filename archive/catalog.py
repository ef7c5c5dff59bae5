"""Reading and writing manifests, verify records and the top-level index at a target."""

from __future__ import annotations

import datetime as dt
import hashlib

from tickarchive.archive import layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ObjectNotFound
from tickarchive.archive.target import Target
from tickarchive.months import Month


def read_month_manifest(target: Target, table: str, month: Month) -> mf.MonthManifest | None:
    key = layout.manifest_key(table, month)
    try:
        data = target.get_bytes(key)
    except ObjectNotFound:
        return None
    return mf.decode(data, mf.MonthManifest, f"{target.url}{key}")


def manifest_sha256(manifest: mf.MonthManifest) -> str:
    return hashlib.sha256(mf.encode(manifest)).hexdigest()


def read_journal_manifest(target: Target, day: dt.date) -> mf.JournalManifest | None:
    key = layout.journal_manifest_key(day)
    try:
        data = target.get_bytes(key)
    except ObjectNotFound:
        return None
    return mf.decode(data, mf.JournalManifest, f"{target.url}{key}")


def read_index(target: Target) -> mf.Index:
    try:
        data = target.get_bytes(layout.INDEX_KEY)
    except ObjectNotFound:
        return mf.Index()
    return mf.decode(data, mf.Index, f"{target.url}{layout.INDEX_KEY}")


def write_index(target: Target, index: mf.Index) -> None:
    target.put_bytes(layout.INDEX_KEY, mf.encode(index))


def index_month_entry(manifest: mf.MonthManifest) -> mf.IndexMonth:
    return mf.IndexMonth(
        table=manifest.table,
        month=manifest.month,
        generation=manifest.generation,
        rows=manifest.total_rows,
        files=len(manifest.files),
        bytes=manifest.total_bytes,
        manifest=layout.manifest_key(manifest.table, Month.parse(manifest.month)),
        created_at=manifest.created_at,
    )


def index_journal_entry(manifest: mf.JournalManifest) -> mf.IndexJournalDay:
    return mf.IndexJournalDay(
        day=manifest.day,
        segments=len(manifest.segments),
        original_bytes=manifest.total_original_bytes,
        bytes=manifest.total_bytes,
        manifest=layout.journal_manifest_key(dt.date.fromisoformat(manifest.day)),
        created_at=manifest.created_at,
    )


def record_month(target: Target, manifest: mf.MonthManifest, now: dt.datetime) -> None:
    index = read_index(target)
    entry = index_month_entry(manifest)
    if entry not in index.months:
        write_index(target, index.with_month(entry, now))


def record_journal_day(target: Target, manifest: mf.JournalManifest, now: dt.datetime) -> None:
    index = read_index(target)
    entry = index_journal_entry(manifest)
    if entry not in index.journal_days:
        write_index(target, index.with_journal_day(entry, now))


def rebuild_index(target: Target, now: dt.datetime) -> mf.Index:
    """The index recomputed from the manifests present at the target (and written back)."""
    index = mf.Index()
    for obj in target.list("_manifests/"):
        parsed = layout.parse_manifest_key(obj.key)
        if parsed is not None:
            m = read_month_manifest(target, *parsed)
            if m is not None:
                index = index.with_month(index_month_entry(m), now)
            continue
        day = layout.parse_journal_manifest_key(obj.key)
        if day is not None:
            j = read_journal_manifest(target, day)
            if j is not None:
                index = index.with_journal_day(index_journal_entry(j), now)
    write_index(target, index)
    return index


def read_verified(target: Target, table: str, month: Month) -> mf.VerifiedRecord | None:
    key = layout.verified_key(table, month)
    try:
        data = target.get_bytes(key)
    except ObjectNotFound:
        return None
    return mf.decode(data, mf.VerifiedRecord, f"{target.url}{key}")


def is_verified(target: Target, table: str, month: Month) -> bool:
    """True when the current manifest of (table, month) is the one the last verify passed."""
    manifest = read_month_manifest(target, table, month)
    record = read_verified(target, table, month)
    return manifest is not None and record is not None and record.manifest_sha256 == manifest_sha256(manifest)
