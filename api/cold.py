"""Reads from the cold tier: the Parquet archive.

A (table, month) is in the cold tier when its manifest exists at ``archive.target``. A
query reads only the files that can hold its rows: the manifest's per-file ts range must
overlap the query's, and, for an exact instrument or a pattern with a literal prefix, the
file's instrument range (from its row-group statistics, remembered by
``api.cold_cache``) must overlap the name or prefix. Files of a local target are read
where they are; files of a remote target (B2) are copied into the bounded, verified cache
(``api.cold_cache``: ``archive.cache_dir``, ``archive.cache_max_bytes``, LRU). Every
path a manifest names is validated before use. Files are read with polars lazy scans
whose filters (instrument, ts) skip row groups by their statistics.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from tickarchive.api import frames
from tickarchive.api.cold_cache import FileCache, inside, safe_key
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.params import InstrumentMatch
from tickarchive.archive import catalog
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.hashing import file_digests
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.tables import ColumnType, Table

log = logging.getLogger(__name__)

MANIFEST_TTL_S = 30.0
DEFAULT_CACHE_BYTES = 20 * 1024**3


def months_between(lo_us: int, hi_us: int) -> list[Month]:
    """Months overlapping [lo, hi]."""
    m, last = Month.of_us(lo_us), Month.of_us(hi_us)
    out = []
    while m <= last:
        out.append(m)
        m = m.plus(1)
    return out


def _match_expr(match: InstrumentMatch | None) -> pl.Expr:
    if match is None:
        return pl.lit(True)
    col = pl.col(match.column)
    return col == match.exact if match.exact is not None else col.str.contains(match.regex or "")


def literal_prefix(match: InstrumentMatch | None) -> tuple[str, bool] | None:
    """(name, exact) or (prefix, False) an instrument must have; None when anything goes."""
    if match is None or match.column != "instrument":
        return None
    if match.exact is not None:
        return match.exact, True
    rx = match.regex or ""
    if not rx.startswith("^") or "|" in rx:
        return None
    prefix = []
    for ch in rx[1:]:
        if ch in ".*?[]()+$\\":
            break
        prefix.append(ch)
    return ("".join(prefix), False) if prefix else None


def may_hold(rng: tuple[str | None, str | None] | None, want: tuple[str, bool] | None) -> bool:
    """Can a file whose instruments span ``rng`` hold ``want``?"""
    if rng is None or want is None:
        return True
    lo, hi = rng
    if lo is None or hi is None:
        return True
    text, exact = want
    if exact:
        return lo <= text <= hi
    return hi >= text and lo[: len(text)] <= text


def _outside(e: mf.FileEntry, lo_us: int, hi_us: int) -> bool:
    """The file's ts range (from its manifest) misses [lo, hi]."""
    return e.min_ts_us is not None and e.max_ts_us is not None and (e.max_ts_us < lo_us or e.min_ts_us > hi_us)


class ColdReader:
    def __init__(self, target: Target, cache_dir: Path, max_cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.target = target
        self.cache_dir = cache_dir
        self.cache = FileCache(cache_dir, max_cache_bytes)
        self._local_root = target.root if isinstance(target, LocalTarget) else None
        self._verified_local: dict[str, tuple[float, int]] = {}
        self._manifests: dict[tuple[str, Month], tuple[float, mf.MonthManifest | None]] = {}
        self._lock = threading.Lock()
        self.files_read = 0
        """Data files opened by queries (for tests: how many a query needed)."""

    # -- catalog ---------------------------------------------------------------------
    def manifest(self, table: str, month: Month) -> mf.MonthManifest | None:
        now = time.monotonic()
        hit = self._manifests.get((table, month))
        if hit is not None and now - hit[0] < MANIFEST_TTL_S:
            return hit[1]
        try:
            found = catalog.read_month_manifest(self.target, table, month)
        except (ArchiveError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable", f"archive: manifest {table} {month}: {exc}") from exc
        self._manifests[(table, month)] = (now, found)
        return found

    def forget(self) -> None:
        """Drop cached manifests (after an export or restore in the same process)."""
        self._manifests.clear()

    def archived(self, table: str, month: Month) -> bool:
        return self.manifest(table, month) is not None

    # -- files -----------------------------------------------------------------------
    def _local_file(self, key: str, entry: mf.FileEntry) -> Path:
        assert self._local_root is not None
        path = inside(self._local_root, key)
        try:
            st = path.stat()
        except OSError as exc:
            raise StoreUnavailable("the archive is unavailable", f"archive: {key}: {exc}") from exc
        stamp = (st.st_mtime, st.st_size)
        with self._lock:
            known = self._verified_local.get(key)
        if known != stamp:
            if file_digests(path).sha256 != entry.sha256:
                raise StoreUnavailable("archive: a file fails its checksum", f"archive: {key} fails its SHA-256 check")
            with self._lock:
                self._verified_local[key] = stamp
        if self.cache.instrument_range(entry.sha256) is None:
            self.cache._record_range(entry.sha256, path)
        return path

    def _fetch_into(self, key: str) -> Any:
        def fetch(dst: Path) -> None:
            with self.target.fetch(key) as fetched:
                shutil.copyfile(fetched.path, dst)

        return fetch

    @contextmanager
    def files(
        self, table: str, lo_us: int, hi_us: int, match: InstrumentMatch | None = None
    ) -> Iterator[list[Path]]:
        """The local paths of the files of ``table`` that can hold rows of [lo, hi] matching
        ``match``, usable (pinned in the cache) for the ``with`` block."""
        want = literal_prefix(match)
        paths: list[Path] = []
        pinned: list[str] = []
        try:
            for m in months_between(lo_us, hi_us):
                found = self.manifest(table, m)
                if found is None:
                    continue
                for e in found.files:
                    key = safe_key(e.path, table, str(m))
                    if _outside(e, lo_us, hi_us):
                        continue
                    if not may_hold(self.cache.instrument_range(e.sha256), want):
                        continue
                    if self._local_root is not None:
                        path = self._local_file(key, e)
                    else:
                        path = self.cache.get(key, e.sha256, e.bytes, self._fetch_into(key))
                        pinned.append(key)
                    if may_hold(self.cache.instrument_range(e.sha256), want):
                        paths.append(path)
            self.files_read += len(paths)
            yield paths
        except (ArchiveError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable", f"archive: fetching {table} files: {exc}") from exc
        finally:
            for key in pinned:
                self.cache.unpin(key)

    # -- queries ---------------------------------------------------------------------
    @staticmethod
    def _scan(
        table: Table, paths: Sequence[Path], lo_us: int, hi_us: int, *, hi_inclusive: bool = False
    ) -> pl.LazyFrame:
        ts = pl.col("ts").cast(pl.Int64)
        scan = pl.scan_parquet([str(p) for p in paths]).with_columns(
            [pl.col(c.name).cast(pl.Int64) for c in table.columns if c.type is ColumnType.TIMESTAMP]
        )
        upper = ts <= hi_us if hi_inclusive else ts < hi_us
        return scan.filter((pl.col("ts") >= lo_us) & upper)

    def _collect(self, lf: pl.LazyFrame) -> pl.DataFrame:
        try:
            return lf.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable", f"archive: reading Parquet: {exc!r}") from exc

    def rows(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        hi_us: int,
        match: InstrumentMatch | None,
        eq: Mapping[str, Any],
        limit: int,
    ) -> pl.DataFrame:
        with self.files(table.name, lo_us, hi_us, match) as paths:
            if not paths:
                return pl.DataFrame(schema=frames.schema(table, columns))
            cond = _match_expr(match)
            for col, value in eq.items():
                cond = cond & (pl.col(col) == value)
            keys = list(frames.order_keys(table, match.column if match and match.exact else None))
            lf = self._scan(table, paths, lo_us, hi_us).filter(cond).select(list(columns)).sort(keys).head(limit)
            return self._collect(lf).cast(frames.schema(table, columns))  # type: ignore[arg-type]

    def latest(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        at_us: int,
        match: InstrumentMatch | None,
        partition_by: str,
    ) -> pl.DataFrame:
        with self.files(table.name, lo_us, at_us, match) as paths:
            if not paths:
                return pl.DataFrame(schema=frames.schema(table, columns))
            lf = (
                self._scan(table, paths, lo_us, at_us, hi_inclusive=True)
                .filter(_match_expr(match))
                .select(list(columns))
                .sort("ts")
                .group_by(partition_by, maintain_order=True)
                .last()
                .select(list(columns))
            )
            return self._collect(lf).cast(frames.schema(table, columns))  # type: ignore[arg-type]

    def minute_bars(self, instrument: str, lo_us: int, hi_us: int, minutes: int = 1) -> pl.DataFrame:
        """Bars of ``minutes`` (epoch-aligned) computed from the archived trades."""
        from tickarchive.tables import TRADES

        match = InstrumentMatch("instrument", exact=instrument)
        with self.files(TRADES.name, lo_us, hi_us, match) as paths:
            if not paths:
                return pl.DataFrame(schema=frames.BARS_SCHEMA)
            minute = 60_000_000 * minutes
            lf = (
                self._scan(TRADES, paths, lo_us, hi_us)
                .filter(pl.col("instrument") == instrument)
                .sort("ts", "trade_seq")
                .group_by((pl.col("ts") // minute * minute).alias("bucket"), maintain_order=True)
                .agg(
                    pl.col("price").first().alias("open"),
                    pl.col("price").max().alias("high"),
                    pl.col("price").min().alias("low"),
                    pl.col("price").last().alias("close"),
                    pl.col("amount").sum().alias("volume"),
                    pl.col("amount").filter(pl.col("direction") == "buy").sum().alias("buy_volume"),
                    pl.col("amount").filter(pl.col("direction") == "sell").sum().alias("sell_volume"),
                    pl.len().cast(pl.Int64).alias("trade_count"),
                    (pl.col("price") * pl.col("amount")).sum().alias("pv"),
                )
                .rename({"bucket": "ts"})
                .sort("ts")
            )
            return self._collect(lf).cast(frames.BARS_SCHEMA)  # type: ignore[arg-type]

    def last_snapshot_ts(self, instrument: str, lo_us: int, at_us: int) -> int | None:
        from tickarchive.tables import BOOK_CHANGES

        match = InstrumentMatch("instrument", exact=instrument)
        with self.files(BOOK_CHANGES.name, lo_us, at_us, match) as paths:
            if not paths:
                return None
            lf = (
                self._scan(BOOK_CHANGES, paths, lo_us, at_us, hi_inclusive=True)
                .filter((pl.col("instrument") == instrument) & pl.col("is_snapshot"))
                .select(pl.col("ts").max())
            )
            value = self._collect(lf).item()
            return int(value) if value is not None else None
