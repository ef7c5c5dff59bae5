"""``verify`` catches corruption and names the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.archive.conftest import MONTH, OPTIONS
from tickarchive.archive import catalog
from tickarchive.archive.errors import IntegrityError
from tickarchive.archive.export import export_month
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.archive.verify import check_month, verify_many, verify_month
from tickarchive.tables import QUOTES, TRADES


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_fails_naming_the_file(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, QUOTES, MONTH, OPTIONS)
    verify_month(local, "quotes", MONTH)
    assert catalog.is_verified(local, "quotes", MONTH)
    bad = local.root / "table=quotes/month=2026-11/part-0001.parquet"
    _flip_byte(bad, bad.stat().st_size // 2)
    with pytest.raises(IntegrityError) as info:
        verify_month(local, "quotes", MONTH)
    text = str(info.value)
    assert "table=quotes/month=2026-11/part-0001.parquet: SHA-256 mismatch" in text
    assert "part-0000" not in text
    assert "part-0002" not in text
    assert not catalog.is_verified(local, "quotes", MONTH)  # the failure revoked the record
    assert [p.split(":")[0] for p in info.value.problems] == [
        "table=quotes/month=2026-11/part-0001.parquet",
        "table=quotes/month=2026-11/part-0001.parquet",
    ]


def test_rows_that_do_not_give_the_manifest_checksum_fail(store: MemoryStore, local: LocalTarget) -> None:
    """Every row is decoded and checksummed: a manifest whose content checksum is not the
    rows' (a writer bug, a manifest from another export) fails verify."""
    import msgspec

    from tickarchive.archive import layout
    from tickarchive.archive import manifest as mf

    export_month(store, local, TRADES, MONTH, OPTIONS)
    good = catalog.read_month_manifest(local, "trades", MONTH)
    assert good is not None
    assert good.content_checksum is not None
    wrong = "0" * 16 if good.content_checksum != "0" * 16 else "1" * 16
    tampered = msgspec.structs.replace(good, content_checksum=wrong)
    local.put_bytes(layout.manifest_key("trades", MONTH), mf.encode(tampered))
    result = check_month(local, "trades", MONTH)
    assert result.problems == (
        f"_manifests/table=trades/month=2026-11.json: the rows give content checksum {good.content_checksum}, "
        f"manifest {wrong}",
    )


def test_missing_file_and_missing_manifest_are_reported(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, QUOTES, MONTH, OPTIONS)
    export_month(store, local, TRADES, MONTH, OPTIONS)
    (local.root / "table=trades/month=2026-11/part-0000.parquet").unlink()
    with pytest.raises(IntegrityError) as info:
        verify_many(local, [("quotes", MONTH), ("trades", MONTH), ("book_changes", MONTH)])
    assert info.value.problems == (
        "table=trades/month=2026-11/part-0000.parquet: missing at the target",
        "_manifests/table=book_changes/month=2026-11.json: no manifest",
    )
    # the good month was still recorded as verified, the bad ones not
    assert catalog.is_verified(local, "quotes", MONTH)
    assert not catalog.is_verified(local, "trades", MONTH)


def test_a_reexport_invalidates_the_verify_record(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, TRADES, MONTH, OPTIONS)
    result = check_month(local, "trades", MONTH)
    assert (result.ok, result.files, result.rows) == (True, 1, 900)
    verify_month(local, "trades", MONTH)
    later = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    export_month(store, local, TRADES, MONTH, OPTIONS, force=True, now=later)
    assert not catalog.is_verified(local, "trades", MONTH)  # a new manifest needs a new verify
    verify_month(local, "trades", MONTH)
    assert catalog.is_verified(local, "trades", MONTH)


def test_forced_export_repairs_a_corrupt_month(store: MemoryStore, local: LocalTarget) -> None:
    export_month(store, local, TRADES, MONTH, OPTIONS)
    part = local.root / "table=trades/month=2026-11/part-0000.parquet"
    _flip_byte(part, 64)
    assert not check_month(local, "trades", MONTH).ok
    # without --force the export only checks presence and size: the flipped byte goes unseen
    assert export_month(store, local, TRADES, MONTH, OPTIONS).status == "up-to-date"
    repaired = export_month(store, local, TRADES, MONTH, OPTIONS, force=True)
    assert (repaired.status, repaired.manifest.generation, repaired.manifest.total_rows) == ("exported", 0, 900)
    verify_month(local, "trades", MONTH)
