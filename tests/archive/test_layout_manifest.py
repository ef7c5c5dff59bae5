from __future__ import annotations

import datetime as dt

import pytest

from tickarchive.archive import layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.errors import InvalidArgument, ManifestError
from tickarchive.errors import InvalidValue
from tickarchive.months import Month


def test_month_bounds_and_arithmetic() -> None:
    m = Month.parse("2026-11")
    assert str(m) == "2026-11"
    assert m.start_us == 1_793_491_200_000_000  # 2026-11-01T00:00:00Z
    assert m.end_us == Month(2026, 12).start_us == 1_796_083_200_000_000
    assert m.plus(2) == Month(2027, 1)
    assert m.plus(-11) == Month(2025, 12)
    assert Month.of_us(m.end_us - 1) == m
    assert Month.of_us(m.end_us) == Month(2026, 12)


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-11", "2026/11", ""])
def test_bad_months_are_rejected(text: str) -> None:
    with pytest.raises(InvalidValue, match="expected YYYY-MM"):
        Month.parse(text)


def test_keys_are_hive_style() -> None:
    m = Month(2026, 11)
    assert layout.part_key("quotes", m, 0) == "table=quotes/month=2026-11/part-0000.parquet"
    assert layout.part_key("quotes", m, 12, generation=2) == "table=quotes/month=2026-11/part-g2-0012.parquet"
    assert layout.manifest_key("trades", m) == "_manifests/table=trades/month=2026-11.json"
    assert layout.parse_manifest_key("_manifests/table=trades/month=2026-11.json") == ("trades", m)
    day = dt.date(2026, 11, 3)
    assert layout.journal_key(day, "seg-000042.log") == "_journal/day=2026-11-03/seg-000042.log.tjz"
    assert layout.parse_journal_manifest_key(layout.journal_manifest_key(day)) == day
    with pytest.raises(InvalidArgument):
        layout.journal_key(day, "../x")


def test_manifest_decoding_validates_fields() -> None:
    with pytest.raises(ManifestError, match="not a valid MonthManifest"):
        mf.decode(b'{"table": "quotes"}', mf.MonthManifest, "m.json")
    index = mf.Index().with_month(
        mf.IndexMonth(
            table="quotes", month="2026-11", generation=0, rows=5, files=1, bytes=10, manifest="x", created_at="t"
        ),
        dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    )
    again = mf.decode(mf.encode(index), mf.Index, "index")
    assert again == index
    assert again.updated_at == "2026-12-02T00:00:00Z"
