"""Side records: the gap rows and backfilled trades the collector journals itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickarchive import domain as d
from tickarchive.ingest.collector import record_decoder
from tickarchive.ingest.journal import Journal, JournalReader
from tickarchive.ingest.journal.side import SIDE_CONNECTION, SIDE_PREFIX, decode_side, encode_side, is_side_record
from tickarchive.settings import Settings
from tickarchive.venues import deribit

GAP = d.Gap(d.GapKind.DISCONNECT, "*", 1_795_000_000_000_000, None, "connection lost", "c1", d.GapStatus.OPEN)
CLOSED = d.Gap(d.GapKind.TRADE_SEQ, "ETH-27DEC26-3000-C", 1_795_000_000_100_000, 1_795_000_000_200_000,
               "trade_seq 41..43 missing", "c0", d.GapStatus.BACKFILLED)
TRADE = d.TradeTick(
    "ETH-27DEC26-3000-C", 1_795_000_000_150_000, 1_795_000_009_000_000, "ETH-123456", 42, 0.0125, 3.0, "buy", 1,
    0.0126, 3012.5, 61.2, 3.0, None, None, None, None, d.TradeSource.BACKFILL,
)


def test_round_trip_keeps_every_field() -> None:
    body = encode_side([GAP, TRADE, CLOSED])
    assert body.startswith(SIDE_PREFIX)
    assert decode_side(body) == [GAP, CLOSED, TRADE]  # gaps first, then trades
    assert decode_side(encode_side([TRADE])) == [TRADE]


def test_only_gaps_and_trades_and_bad_records_are_empty() -> None:
    quote = d.QuoteTick("ETH-X", 1, 2)
    assert not is_side_record([GAP, quote])
    assert not is_side_record([])
    assert is_side_record([GAP, TRADE])
    with pytest.raises(TypeError, match="only Gap and TradeTick"):
        encode_side([GAP, quote])
    assert decode_side(b'{"jsonrpc":"2.0","method":"heartbeat"}') is None  # an exchange frame
    assert decode_side(SIDE_PREFIX + b'"gaps":[{"kind":"nope"}]}') == []  # damaged: counted, no rows


def test_the_writer_reads_side_records_back_from_the_journal(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j.append(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 5, "c0")
        j.append(encode_side([GAP, TRADE]), 5, SIDE_CONNECTION)
    recs = list(JournalReader(tmp_path).read_from(0))
    assert [r.connection for r in recs] == ["c0", SIDE_CONNECTION]
    decode = record_decoder(deribit.build(Settings()))
    assert list(decode(recs[0])) == []
    assert list(decode(recs[1])) == [GAP, TRADE]
