"""The domain types and the table registry describe the same rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tickarchive import domain as d
from tickarchive import rows
from tickarchive import tables as t


@pytest.mark.parametrize("cls", list(rows.TABLE_OF_EVENT))
def test_every_column_has_a_field_and_every_field_a_column(cls: type) -> None:
    table = rows.TABLE_OF_EVENT[cls]
    fields = set(cls.__struct_fields__)
    filled = set(rows.field_of_column(table).values())
    assert filled == fields


def test_every_table_is_covered_by_an_event_type() -> None:
    assert {tbl.name for tbl in rows.TABLE_OF_EVENT.values()} == set(t.BY_NAME)


def test_dedup_keys_are_columns_and_start_with_ts() -> None:
    for table in t.ALL_TABLES:
        assert table.dedup_keys[0] == "ts", table.name
        assert set(table.dedup_keys) <= set(table.column_names), table.name
        assert table.segment_by in table.column_names


def test_event_row_maps_renamed_fields_and_enums() -> None:
    gap = d.Gap(
        kind=d.GapKind.TRADE_SEQ,
        instrument="ETH-27DEC24-4000-C",
        start_us=1_700_000_000_000_000,
        end_us=1_700_000_001_000_000,
        cause="trade_seq 41 -> 44",
        connection="c2",
        status=d.GapStatus.BACKFILLED,
    )
    table, row = rows.event_row(gap)
    assert table is t.GAPS
    assert row == {
        "ts": 1_700_000_000_000_000,
        "end_ts": 1_700_000_001_000_000,
        "instrument": "ETH-27DEC24-4000-C",
        "kind": "trade_seq",
        "cause": "trade_seq 41 -> 44",
        "connection": "c2",
        "status": "backfilled",
    }


def test_events_to_arrow_keeps_nulls_and_timestamps() -> None:
    quotes = [
        d.QuoteTick(instrument="ETH-1", ts_us=1_000, recv_ts_us=2_000, bid_price=0.0125, ask_price=None),
        d.QuoteTick(instrument="ETH-2", ts_us=3_000, recv_ts_us=4_000, bid_price=None, ask_price=0.5),
    ]
    arrow = rows.events_to_arrow(t.QUOTES, quotes)
    assert arrow.schema == rows.arrow_schema(t.QUOTES)
    assert arrow.column("bid_price").to_pylist() == [0.0125, None]
    assert arrow.column("ask_price").to_pylist() == [None, 0.5]
    assert arrow.column("ts").type == pa.timestamp("us", tz="UTC")
    assert arrow.column("ts").cast(pa.int64()).to_pylist() == [1_000, 3_000]
