"""``store.ilp`` (the hot-path encoder) writes exactly the rows ``tickarchive.rows`` defines."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tickarchive import domain as d
from tickarchive import rows
from tickarchive import tables as t
from tickarchive.bench.normalize import load_frames
from tickarchive.store.ilp import TABLE_NAMES, IlpEncoder, encode
from tickarchive.store.ilp_batch import BATCHED, encode_batch
from tickarchive.venues.deribit.normalize import Notification, parse_frame

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer, TimestampMicros

FULL: list[d.Event] = [
    d.QuoteTick(
        "ETH-30JUL21-2800-C",
        1626993723632000,
        1626993723804855,
        0.0015,
        4714.0,
        0.0025,
        873.0,
        115.62,
        125.63,
        120.74,
        0.001972,
        2003.61,
        "ETH-30JUL21",
        2006.72,
        0.03127,
        0.0002,
        0.20072,
        -1.64029,
        0.01188,
        12685.0,
        0.002,
        0.0,
        0.0001,
        0.025,
        0.0,
        869.0,
        0.0001,
        0.00001742,
        2006.72,
        "open",
        0.0025,
        0.0015,
        -19.1489,
        12875.5,
        12875.5,
        0.0028213400122472977,
        2004.1,
        0.0012,
        0.0027,
        "active",
        "100ms",
    ),
    d.TradeTick(
        "BTC-19MAY26-75000-C",
        1779118041757000,
        1779118041800000,
        "244365195",
        8,
        0.0174,
        0.1,
        "buy",
        2,
        0.01733488,
        76185.14,
        41.01,
        0.1,
        "BLOCK_1",
        "MT",
        "BTC-CS-19MAY26-70000_75000",
        "244365193",
        d.TradeSource.BACKFILL,
    ),
    d.BookChange(
        "BTC-24SEP21-8000-P",
        1626993724318000,
        1626993724283178,
        33195894355,
        33195894164,
        False,
        d.Side.ASK,
        d.BookAction.NEW,
        0.001,
        2.6,
        "raw",
    ),
    d.IndexTick("eth_usd", 1626993723632000, 1626993723700000, 2006.72),
    d.InstrumentEvent(
        "ETH-23JUL21-2050-P",
        1626993723450156,
        1626993723416907,
        "open",
        "option",
        "ETH",
        "ETH",
        "ETH",
        "put",
        2050.0,
        1627027200000000,
        1626891240000000,
        0.0005,
        1.0,
        1.0,
        "week",
        218538,
    ),
    d.ComboLeg("BTC-CS-19MAY26-70000_75000", 1779117084722409, 1779117084800000, "BTC-19MAY26-75000-C", -1.0,
               "active", 584635),
    d.Gap(
        d.GapKind.TRADE_SEQ,
        "ETH-1",
        1_700_000_000_000_000,
        1_700_000_001_000_000,
        "trade_seq 41 -> 44",
        "c2",
        d.GapStatus.OPEN,
    ),
    d.ConnectionHeartbeat("c1", 1_700_000_000_000_000, True, 1234, 99, 1_699_999_999_000_000, 4096),
]

SPARSE: list[d.Event] = [
    d.QuoteTick("ETH-1", 1_000, 2_000),
    d.TradeTick("ETH-1", 1_000, 2_000, "ETH-5", 7, 1.5, 2.0, "sell"),
    d.BookChange("ETH-1", 1_000, 2_000, 5, None, True, d.Side.BID, d.BookAction.SNAPSHOT, 0.5, 3.0),
    d.InstrumentEvent("ETH-1", 1_000, 2_000, "archivized"),
    d.ComboLeg("ETH-CS-1", 1_000, 2_000, "ETH-1", 1.0),
    d.Gap(d.GapKind.DISCONNECT, d.ALL_INSTRUMENTS, 5_000, None, "socket closed", "c0", d.GapStatus.OPEN),
    d.ConnectionHeartbeat("c1", 1_000, False, 0, 0, None, 0),
]


def _reference(buf: Buffer, event: d.Event) -> None:
    """A generic ILP row built from ``rows.event_row`` and the table registry."""
    table, row = rows.event_row(event)
    symbols: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    for col in table.columns:
        if col.name == "ts":
            continue
        value = row[col.name]
        if col.type is t.ColumnType.SYMBOL:
            symbols[col.name] = value
        elif col.type is t.ColumnType.TIMESTAMP:
            columns[col.name] = None if value is None else TimestampMicros(value)
        else:
            columns[col.name] = value
    at: Any = TimestampMicros(row["ts"])  # accepted at runtime; the stubs list only nanos
    buf.row(table.name, symbols=symbols, columns=columns, at=at)


@pytest.mark.parametrize("protocol_version", [1, 2, 3])
@pytest.mark.parametrize("event", FULL + SPARSE, ids=lambda e: type(e).__name__)
def test_encoder_matches_rows_mapping_byte_for_byte(event: d.Event, protocol_version: int) -> None:
    fast = Buffer(protocol_version=protocol_version)
    ref = Buffer(protocol_version=protocol_version)
    table = encode(fast, event)
    _reference(ref, event)
    assert table == rows.TABLE_OF_EVENT[type(event)].name
    assert bytes(fast) == bytes(ref)


def test_every_table_has_an_encoder() -> None:
    assert set(TABLE_NAMES) == set(t.BY_NAME)


def test_nulls_are_omitted_and_values_exact_v1() -> None:
    buf = Buffer(protocol_version=1)
    encode(buf, SPARSE[0])
    assert bytes(buf) == b"quotes,instrument=ETH-1 recv_ts=2000t 1000000\n"
    buf = Buffer(protocol_version=1)
    encode(buf, FULL[2])
    assert bytes(buf) == (
        b"book_changes,instrument=BTC-24SEP21-8000-P,side=ask,action=new,channel_interval=raw "
        b"recv_ts=1626993724283178t,"
        b"change_id=33195894355i,prev_change_id=33195894164i,is_snapshot=f,price=0.001,amount=2.6 "
        b"1626993724318000000\n"
    )


def test_encoder_buffers_per_table_and_take() -> None:
    enc = IlpEncoder(protocol_version=2)
    assert enc.add_all(FULL + SPARSE) == 15
    enc.add(FULL[0])
    assert enc.rows["quotes"] == 3
    assert enc.rows["index_ticks"] == 1
    assert enc.total_rows == 16
    taken = enc.take()
    assert set(taken) == set(TABLE_NAMES)
    quotes_buf, quotes_rows = taken["quotes"]
    assert quotes_rows == 3
    assert bytes(quotes_buf).count(b"quotes,instrument=") == 3
    assert enc.total_rows == 0
    assert len(enc.buffer("quotes")) == 0
    enc.add(FULL[3])
    assert list(enc.take()) == ["index_ticks"]
    enc.add(FULL[3])
    enc.clear()
    assert enc.total_rows == 0
    assert len(enc.buffer("index_ticks")) == 0


def _reference_bytes(events: list[d.Event], protocol_version: int) -> bytes:
    ref = Buffer(protocol_version=protocol_version)
    for ev in events:
        _reference(ref, ev)
    return bytes(ref)


@pytest.mark.parametrize("protocol_version", [1, 2, 3])
@pytest.mark.parametrize("cls", BATCHED, ids=lambda c: c.__name__)
def test_batch_path_matches_rows_mapping_byte_for_byte(cls: type, protocol_version: int) -> None:
    """``Buffer.dataframe`` batches: NULLs left out per row, all-NULL columns left out,
    symbols then columns in table order, the same designated timestamp."""
    full = [e for e in FULL if type(e) is cls]
    sparse = [e for e in SPARSE if type(e) is cls]
    for events in (full, sparse, full + sparse, sparse + full + sparse):
        if not events:
            continue
        buf = Buffer(protocol_version=protocol_version)
        assert encode_batch(buf, events) == rows.TABLE_OF_EVENT[cls].name
        assert bytes(buf) == _reference_bytes(events, protocol_version)


REAL_WS = Path(__file__).resolve().parents[1] / "fixtures/deribit/real/cryptofeed_2021-07-22_DERIBIT.ws.1.0"


def test_batch_path_on_real_capture_matches_rows_mapping() -> None:
    real_ws_events = [
        ev for ts, frame in load_frames(REAL_WS) if type(o := parse_frame(frame, ts)) is Notification for ev in o.events
    ]
    assert len(real_ws_events) == 241  # 89 quotes, 149 book levels, 3 empty-side markers
    enc = IlpEncoder(protocol_version=3, batch_min_rows=1)
    assert enc.add_all(real_ws_events) == len(real_ws_events)
    taken = enc.take()
    assert sum(n for _, n in taken.values()) == len(real_ws_events)
    for name, (buf, n) in taken.items():
        events = [e for e in real_ws_events if rows.TABLE_OF_EVENT[type(e)].name == name]
        assert n == len(events)
        assert bytes(buf) == _reference_bytes(events, 3)


@pytest.mark.parametrize("batch_min_rows", [1, 1000])
def test_encoder_keeps_row_order_across_buffer_and_take(batch_min_rows: int) -> None:
    enc = IlpEncoder(protocol_version=2, batch_min_rows=batch_min_rows)
    enc.add(FULL[0])
    assert bytes(enc.buffer("quotes")).count(b"quotes,") == 1  # pending rows are encoded on demand
    enc.add_all([SPARSE[0], FULL[0]])
    buf, n = enc.take()["quotes"]
    assert n == 3
    assert bytes(buf) == _reference_bytes([FULL[0], SPARSE[0], FULL[0]], 2)


def test_a_value_the_batch_path_cannot_take_falls_back_to_the_row_path() -> None:
    odd = d.QuoteTick("ETH-1", 1_000, 2_000, bid_price="not a price")  # type: ignore[arg-type]
    enc = IlpEncoder(protocol_version=1, batch_min_rows=1)
    enc.add_all([FULL[0], odd])
    buf, n = enc.take()["quotes"]
    assert n == 2
    assert bytes(buf) == _reference_bytes([FULL[0], odd], 1)


def test_encoded_rows_ride_after_the_buffer_rows_in_one_request_body() -> None:
    """Pre-encoded rows (the native fast path's output) are taken as they are: after the
    rows encoded from events, in the order added, counted with their own row counts."""
    from tickarchive.domain import EncodedRows

    ref = IlpEncoder(protocol_version=2)
    ref.add(FULL[0])
    first = bytes(ref.take()["quotes"][0])
    ref.add(SPARSE[0])
    second = bytes(ref.take()["quotes"][0])

    enc = IlpEncoder(protocol_version=2)
    assert enc.add_all([EncodedRows("quotes", second, 1, "ETH-X", 1), FULL[0]]) == 2
    enc.add(EncodedRows("quotes", second, 1, "ETH-X", 2))
    enc.add(EncodedRows("book_changes", b"", 0, "ETH-X", 3))  # an empty book: nothing to send
    assert enc.rows["quotes"] == 3
    with pytest.raises(ValueError, match="take_payloads"):
        enc.take()
    taken = enc.take_payloads()
    assert list(taken) == ["quotes"]
    assert taken["quotes"] == (first + second + second, 3)
    assert enc.take_payloads() == {}
    with pytest.raises(ValueError, match="unknown table"):
        enc.add(EncodedRows("nope", b"x", 1, "ETH-X", 1))
