"""Reads from the cold tier: the Parquet archive, fetched into a local cache on demand.

A (table, month) is in the cold tier when its manifest exists at ``archive.target``. Its
files are copied into ``archive.cache_dir`` under their archive keys the first time a
query needs them; each copy's SHA-256 is checked against the manifest before it is used
(a ``.sha256`` sidecar records the check). A new generation has new file names, so stale
copies are simply never read again. Files are read with polars lazy scans whose filters
(instrument, ts) skip row groups by their statistics.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tickarchive.api import frames
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.params import InstrumentMatch
from tickarchive.archive import catalog
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import ArchiveError
from tickarchive.archive.hashing import file_digests
from tickarchive.archive.target import Target
from tickarchive.months import Month
from tickarchive.tables import ColumnType, Table

log = logging.getLogger(__name__)

MANIFEST_TTL_S = 30.0


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


class ColdReader:
    def __init__(self, target: Target, cache_dir: Path) -> None:
        self.target = target
        self.cache_dir = cache_dir
        self._manifests: dict[tuple[str, Month], tuple[float, mf.MonthManifest | None]] = {}
        self._lock = threading.Lock()

    # -- catalog ---------------------------------------------------------------------
    def manifest(self, table: str, month: Month) -> mf.MonthManifest | None:
        now = time.monotonic()
        hit = self._manifests.get((table, month))
        if hit is not None and now - hit[0] < MANIFEST_TTL_S:
            return hit[1]
        try:
            found = catalog.read_month_manifest(self.target, table, month)
        except (ArchiveError, OSError) as exc:
            raise StoreUnavailable(f"archive: reading the manifest of {table} {month} failed ({exc})") from exc
        self._manifests[(table, month)] = (now, found)
        return found

    def forget(self) -> None:
        """Drop cached manifests (after an export or restore in the same process)."""
        self._manifests.clear()

    def archived(self, table: str, month: Month) -> bool:
        return self.manifest(table, month) is not None

    def _local(self, entry: mf.FileEntry) -> Path:
        path = self.cache_dir / entry.path
        sidecar = path.with_name(path.name + ".sha256")
        if path.exists() and sidecar.exists() and sidecar.read_text().strip() == entry.sha256:
            return path
        with self._lock:
            if path.exists() and sidecar.exists() and sidecar.read_text().strip() == entry.sha256:
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with self.target.fetch(entry.path) as fetched:
                shutil.copyfile(fetched.path, tmp)
            digest = file_digests(tmp).sha256
            if digest != entry.sha256:
                tmp.unlink(missing_ok=True)
                raise StoreUnavailable(f"archive: {entry.path} fails its SHA-256 check (cache not updated)")
            tmp.replace(path)
            sidecar.write_text(entry.sha256 + "\n")
            return path

    def files(self, table: str, months: Sequence[Month]) -> list[Path]:
        out: list[Path] = []
        try:
            for m in months:
                found = self.manifest(table, m)
                if found is not None:
                    out.extend(self._local(e) for e in found.files)
        except (ArchiveError, OSError) as exc:
            raise StoreUnavailable(f"archive: fetching {table} files failed ({exc})") from exc
        return out

    # -- queries ---------------------------------------------------------------------
    def _scan(self, table: Table, lo_us: int, hi_us: int, *, hi_inclusive: bool = False) -> pl.LazyFrame | None:
        paths = self.files(table.name, months_between(lo_us, hi_us))
        if not paths:
            return None
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
            raise StoreUnavailable(f"archive: reading Parquet failed ({type(exc).__name__})") from exc

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
        scan = self._scan(table, lo_us, hi_us)
        if scan is None:
            return pl.DataFrame(schema=frames.schema(table, columns))
        cond = _match_expr(match)
        for col, value in eq.items():
            cond = cond & (pl.col(col) == value)
        keys = list(frames.order_keys(table, match.column if match and match.exact else None))
        lf = scan.filter(cond).select(list(columns)).sort(keys).head(limit)
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
        scan = self._scan(table, lo_us, at_us, hi_inclusive=True)
        if scan is None:
            return pl.DataFrame(schema=frames.schema(table, columns))
        lf = (
            scan.filter(_match_expr(match))
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

        scan = self._scan(TRADES, lo_us, hi_us)
        if scan is None:
            return pl.DataFrame(schema=frames.BARS_SCHEMA)
        minute = 60_000_000 * minutes
        lf = (
            scan.filter(pl.col("instrument") == instrument)
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

        scan = self._scan(BOOK_CHANGES, lo_us, at_us, hi_inclusive=True)
        if scan is None:
            return None
        lf = scan.filter((pl.col("instrument") == instrument) & pl.col("is_snapshot")).select(pl.col("ts").max())
        value = self._collect(lf).item()
        return int(value) if value is not None else None
