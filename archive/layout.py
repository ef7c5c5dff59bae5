"""Where things live in the archive: months, days and object keys.

The lake is Hive-partitioned so that polars, DuckDB, Spark and Trino read it directly::

    table=quotes/month=2026-11/part-0000.parquet        data (generation 0)
    table=quotes/month=2026-11/part-g1-0000.parquet     data re-exported once (late rows)
    _manifests/table=quotes/month=2026-11.json          manifest of one (table, month)
    _verified/table=quotes/month=2026-11.json           record of the last successful verify
    _index.json                                         every archived (table, month)
    _journal/day=2026-11-03/<segment>.tjz               raw journal segments (archive.journal_codec)
    _manifests/journal/day=2026-11-03.json              manifest of one journal day

Names starting with ``_`` or ``.`` are ignored by Hive-style readers, so only data
files are seen by ``table=*/month=*/*.parquet``.
"""

from __future__ import annotations

import datetime as dt
import re

from tickarchive.archive.errors import InvalidArgument
from tickarchive.months import Month

INDEX_KEY = "_index.json"


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument(f"invalid day {text!r}: expected YYYY-MM-DD") from None


def month_dir(table: str, month: Month) -> str:
    return f"table={table}/month={month}/"


def part_key(table: str, month: Month, part: int, generation: int = 0) -> str:
    gen = "" if generation == 0 else f"g{generation}-"
    return f"{month_dir(table, month)}part-{gen}{part:04d}.parquet"


def manifest_key(table: str, month: Month) -> str:
    return f"_manifests/table={table}/month={month}.json"


def verified_key(table: str, month: Month) -> str:
    return f"_verified/table={table}/month={month}.json"


def journal_dir(day: dt.date) -> str:
    return f"_journal/day={day.isoformat()}/"


JOURNAL_SUFFIX = ".tjz"
"""Archived journal segments: the structured codec (``archive.journal_codec``). Days archived
before it hold ``.zst`` files (plain zstd of the segment), still read."""
LEGACY_JOURNAL_SUFFIX = ".zst"


def journal_key(day: dt.date, segment_name: str) -> str:
    if "/" in segment_name or segment_name.startswith("."):
        raise InvalidArgument(f"invalid journal segment name {segment_name!r}")
    return f"{journal_dir(day)}{segment_name}{JOURNAL_SUFFIX}"


def journal_manifest_key(day: dt.date) -> str:
    return f"_manifests/journal/day={day.isoformat()}.json"


_MANIFEST_RE = re.compile(r"^_manifests/table=([a-z0-9_]+)/month=(\d{4}-\d{2})\.json$")
_JOURNAL_MANIFEST_RE = re.compile(r"^_manifests/journal/day=(\d{4}-\d{2}-\d{2})\.json$")


def parse_manifest_key(key: str) -> tuple[str, Month] | None:
    m = _MANIFEST_RE.match(key)
    return None if m is None else (m.group(1), Month.parse(m.group(2)))


def parse_journal_manifest_key(key: str) -> dt.date | None:
    m = _JOURNAL_MANIFEST_RE.match(key)
    return None if m is None else dt.date.fromisoformat(m.group(1))
