"""The cold tier's cache (#17 hardening 3 and 4): manifest paths confined, files verified
when they enter the cache, only the files a query needs, an LRU bound, its own path."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.api import data
from tickarchive.api.cold import ColdReader
from tickarchive.api.cold_cache import check_location, safe_key
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.params import instrument_match
from tickarchive.archive import layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.archive.target import Fetched
from tickarchive.months import Month
from tickarchive.rows import events_to_arrow
from tickarchive.tables import QUOTES

OCT = Month(2026, 10)
LO, HI = data.us(data.DAYS[0]), data.us(data.DAYS[-1], 23, 59)


class Remote:
    """A target that is not local: the reader must copy its files into the cache."""

    def __init__(self, inner: LocalTarget) -> None:
        self.inner = inner
        self.fetched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def fetch(self, key: str) -> AbstractContextManager[Fetched]:
        self.fetched.append(key)
        return self.inner.fetch(key)


@pytest.fixture
def lake(tmp_path: Path) -> LocalTarget:
    """October of the test quotes, exported in parts of 100 rows (sorted by instrument: each
    part holds one or two instruments)."""
    store = MemoryStore()
    store.insert(QUOTES, events_to_arrow(QUOTES, data.quotes()))
    target = LocalTarget(tmp_path / "lake")
    export_month(store, target, QUOTES, OCT, ExportOptions(row_group_rows=100, file_rows=100,
                                                          staging_dir=tmp_path / "staging"))
    return target


def manifest_of(target: LocalTarget) -> mf.MonthManifest:
    return mf.decode(target.get_bytes(layout.manifest_key("quotes", OCT)), mf.MonthManifest, "test")


def test_paths_from_manifests_must_be_data_files_of_their_month(lake: LocalTarget, tmp_path: Path) -> None:
    good = manifest_of(lake).files[0].path
    assert safe_key(good, "quotes", "2026-10") == good
    for bad in ("../../x", "/etc/passwd", "table=quotes/month=2026-10/../../../x.parquet",
                "table=trades/month=2026-10/part-0000.parquet", "table=quotes/month=2026-11/part-0000.parquet",
                "table=quotes/month=2026-10/part-0000.parquet\\..", "_index.json"):
        with pytest.raises(StoreUnavailable):
            safe_key(bad, "quotes", "2026-10")
    m = manifest_of(lake)
    forged = msgspec.structs.replace(m, files=(msgspec.structs.replace(m.files[0], path="../../escaped.parquet"),))
    lake.put_bytes(layout.manifest_key("quotes", OCT), mf.encode(forged))
    reader = ColdReader(Remote(lake), tmp_path / "cache", 10**9)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable) as err:
        reader.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10)
    assert "unexpected file" in err.value.detail  # the client sees no path
    assert not (tmp_path / "escaped.parquet").exists()
    assert not list(tmp_path.rglob("escaped*"))


def test_a_query_fetches_only_the_files_that_can_hold_its_instrument(lake: LocalTarget, tmp_path: Path) -> None:
    files = manifest_of(lake).files
    assert len(files) >= 5
    remote = Remote(lake)
    reader = ColdReader(remote, tmp_path / "cache", 10**9)  # type: ignore[arg-type]
    everything = reader.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10_000)
    assert everything.height == len(data.quotes())
    assert len(remote.fetched) == len(files)
    one = instrument_match("BTC-27NOV26-90000-C")
    reader.files_read = 0
    got = reader.rows(QUOTES, QUOTES.column_names, LO, HI, one, {}, 10_000)
    assert got.height == sum(1 for q in data.quotes() if q.instrument == one.exact)
    assert 1 <= reader.files_read < len(files) / 2  # the others' instrument ranges cannot hold it
    # a new process over the same cache knows the ranges without fetching anything again
    again = ColdReader(Remote(lake), tmp_path / "cache", 10**9)  # type: ignore[arg-type]
    assert again.rows(QUOTES, QUOTES.column_names, LO, HI, one, {}, 10_000).equals(got)
    assert again.files_read == reader.files_read


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(lake: LocalTarget, tmp_path: Path) -> None:
    files = manifest_of(lake).files
    biggest = max(f.bytes for f in files)
    bound = 3 * biggest
    reader = ColdReader(Remote(lake), tmp_path / "cache", bound)  # type: ignore[arg-type]
    for inst in data.INSTRUMENTS:
        reader.rows(QUOTES, QUOTES.column_names, LO, HI, instrument_match(inst), {}, 10_000)
    reader.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10_000)  # every file once more
    held = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.parquet"))
    assert held <= bound
    assert reader.cache.evictions > 0
    assert reader.cache.bytes == held


def test_a_cached_file_is_verified_when_it_enters_the_cache(lake: LocalTarget, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ColdReader(Remote(lake), cache, 10**9)  # type: ignore[arg-type]
    want = first.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10_000)
    victim = next(cache.rglob("*.parquet"))
    victim.write_bytes(b"PAR1 not what the manifest says")  # damaged between two API runs
    remote = Remote(lake)
    second = ColdReader(remote, cache, 10**9)  # type: ignore[arg-type]
    assert second.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10_000).equals(want)
    assert remote.fetched == [victim.relative_to(cache).as_posix()]  # only the damaged file came again
    assert victim.read_bytes()[:4] == b"PAR1"
    assert victim.stat().st_size > 100


def test_a_damaged_local_archive_file_is_refused(lake: LocalTarget, tmp_path: Path) -> None:
    reader = ColdReader(lake, tmp_path / "cache", 10**9)
    path = lake.root / manifest_of(lake).files[0].path
    path.write_bytes(path.read_bytes()[:-20] + b"\0" * 20)
    with pytest.raises(StoreUnavailable, match="checksum"):
        reader.rows(QUOTES, QUOTES.column_names, LO, HI, None, {}, 10_000)


def test_the_cache_has_its_own_path(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    with pytest.raises(StoreUnavailable, match="inside the journal folder"):
        check_location(journal / "archive-cache", journal)
    check_location(tmp_path / "archive-cache", journal)
