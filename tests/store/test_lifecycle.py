"""Warm retention (drop a month only after its archive verified) and the warm-store helpers, both dialects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store import rollover_data as data
from tickarchive import rows
from tickarchive.archive.export import export_month
from tickarchive.archive.retention import Verdict
from tickarchive.archive.targets import open_target
from tickarchive.archive.verify import verify_month
from tickarchive.domain import TradeTick
from tickarchive.months import Month
from tickarchive.ops.lifecycle import warm_retention
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.warm import WarmStore, detect
from tickarchive.tables import QUOTES, TRADES

AUG, SEP, OCT = dt.date(2025, 8, 14), dt.date(2025, 9, 3), dt.date(2026, 10, 6)
TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def warm(warm_store: WarmHandle) -> Iterator[WarmStore]:
    with WarmStore(warm_store.owner_dsn, warm_store.dialect, pglite=warm_store.pglite) as w:
        yield w


def _load(warm: WarmStore, day: dt.date) -> None:
    for table, events in ((TRADES, data.trades_of(day)), (QUOTES, data.quotes_of(day, 10))):
        for batch in rows.events_to_arrow(table, events).to_batches():
            assert warm.load(table, batch, day) == batch.num_rows
        warm.compress_day(table, day)


def test_warm_retention_drops_only_verified_old_months(warm: WarmStore, warm_store: WarmHandle, tmp_path: Path) -> None:
    for day in (AUG, SEP, OCT):
        _load(warm, day)
    assert warm.stored_months(TRADES) == [Month(2025, 8), Month(2025, 9), Month(2026, 10)]
    target = open_target(str(tmp_path / "lake"))
    with WarmStore.open(warm_store.reader_dsn) as source:
        for m in (Month(2025, 8), Month(2025, 9)):
            assert export_month(source, target, TRADES, m).manifest.total_rows == 5
    verify_month(target, "trades", Month(2025, 8))  # September is archived but never verified

    dry = warm_retention(warm, target, TODAY, 12, tables=(TRADES, QUOTES), dry_run=True)
    assert {(o.table, str(o.month), o.verdict, o.rows, o.dropped) for o in dry} == {
        ("quotes", "2025-08", Verdict.KEEP_UNVERIFIED, 10, False),
        ("quotes", "2025-09", Verdict.KEEP_UNVERIFIED, 10, False),
        ("quotes", "2026-10", Verdict.KEEP_RECENT, -1, False),
        ("trades", "2025-08", Verdict.DROP, 5, False),
        ("trades", "2025-09", Verdict.KEEP_UNVERIFIED, 5, False),
        ("trades", "2026-10", Verdict.KEEP_RECENT, -1, False),
    }
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 15

    done = warm_retention(warm, target, TODAY, 12, tables=(TRADES, QUOTES))
    assert [(o.table, str(o.month)) for o in done if o.dropped] == [("trades", "2025-08")]
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 10
    assert warm_store.query("SELECT count(*) FROM quotes")[0][0] == 30
    assert warm.stored_months(TRADES) == [Month(2025, 9), Month(2026, 10)]
    # the retention horizon is 12 months: on 2026-09-30, August 2025 was still kept
    for batch in rows.events_to_arrow(TRADES, data.trades_of(AUG)).to_batches():
        assert warm.load(TRADES, batch, AUG) == 5
    again = warm_retention(warm, target, dt.date(2026, 8, 31), 12, tables=(TRADES,))
    assert {(str(o.month), o.verdict) for o in again} == {
        ("2025-08", Verdict.KEEP_RECENT), ("2025-09", Verdict.KEEP_RECENT), ("2026-10", Verdict.KEEP_RECENT)}


def test_detect_warm_dialect(warm_store: WarmHandle) -> None:
    assert detect(warm_store.owner_dsn) == (warm_store.dialect, warm_store.pglite)


def test_compression_and_late_insert_into_a_compressed_day(warm: WarmStore, warm_store: WarmHandle) -> None:
    _load(warm, OCT)
    chunks = warm.compression(TRADES, OCT)
    if warm_store.pglite:
        assert [(c, p) for _, c, p in chunks] == [(True, False)]
    else:
        assert chunks == []
    again = data.trades_of(OCT)[0]
    new = TradeTick(instrument=data.PUT, ts_us=data.us(OCT, 15), recv_ts_us=data.us(OCT, 15, 0, 1), trade_id="LATE-1",
                    trade_seq=8, price=0.011, amount=1.0, direction="sell")
    late = rows.events_to_arrow(TRADES, [again, new]).to_batches()[0]
    assert warm.load(TRADES, late, OCT) == 1  # the duplicate is ignored, the new trade goes in
    if warm_store.pglite:
        assert [p for _, _, p in warm.compression(TRADES, OCT)] == [True]  # partially compressed
        warm.compress_day(TRADES, OCT)
        assert [(c, p) for _, c, p in warm.compression(TRADES, OCT)] == [(True, False)]
    assert warm.count_day(TRADES, OCT) == 6


def test_warm_retention_never_drops_a_row_the_archive_lacks(
    warm: WarmStore, warm_store: WarmHandle, tmp_path: Path
) -> None:
    """A trade backfilled into a month after it was exported and verified: the warm month
    no longer equals the archive, so retention exports it again (a new generation),
    verifies that, and only then drops; the archive holds the late trade."""
    import pyarrow.parquet as pq

    from tickarchive.archive import catalog

    _load(warm, AUG)
    target = open_target(str(tmp_path / "lake"))
    with WarmStore.open(warm_store.reader_dsn) as source:
        assert export_month(source, target, TRADES, Month(2025, 8)).manifest.total_rows == 5
    verify_month(target, "trades", Month(2025, 8))
    late = TradeTick(instrument=data.PUT, ts_us=data.us(AUG, 20), recv_ts_us=data.us(AUG, 20, 0, 1),
                     trade_id="LATE-AUG", trade_seq=99, price=0.02, amount=3.0, direction="buy")
    assert warm.load(TRADES, rows.events_to_arrow(TRADES, [late]).to_batches()[0], AUG) == 1

    done = warm_retention(warm, target, TODAY, 12, tables=(TRADES,))

    manifest = catalog.read_month_manifest(target, "trades", Month(2025, 8))
    assert manifest is not None
    archived = [t for f in manifest.files for t in pq.read_table(tmp_path / "lake" / f.path)["trade_id"].to_pylist()]
    assert "LATE-AUG" in archived
    assert (manifest.total_rows, manifest.generation) == (6, 1)
    assert [(str(o.month), o.dropped, o.reexported) for o in done] == [("2025-08", True, True)]
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 0


def test_warm_retention_keeps_a_month_whose_rows_changed_in_place(
    warm: WarmStore, warm_store: WarmHandle, tmp_path: Path
) -> None:
    """Same row count, other content (a row updated under its dedup key, e.g. a gap that
    was closed after the export): the checksum differs, so the month is exported again
    before it is dropped."""
    from tickarchive.archive import catalog

    _load(warm, AUG)
    target = open_target(str(tmp_path / "lake"))
    with WarmStore.open(warm_store.reader_dsn) as source:
        first = export_month(source, target, TRADES, Month(2025, 8)).manifest
    verify_month(target, "trades", Month(2025, 8))
    warm_store.query("UPDATE trades SET amount = amount + 1 WHERE trade_id = (SELECT min(trade_id) FROM trades)")

    done = warm_retention(warm, target, TODAY, 12, tables=(TRADES,))

    manifest = catalog.read_month_manifest(target, "trades", Month(2025, 8))
    assert manifest is not None
    assert manifest.generation == 1  # exported again before the drop
    assert manifest.total_rows == first.total_rows
    assert manifest.content_checksum != first.content_checksum
    assert [(str(o.month), o.dropped, o.reexported) for o in done] == [("2025-08", True, True)]
