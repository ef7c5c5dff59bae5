"""Replay into a real QuestDB over ILP/HTTP (protocol v2): the rows land with exact values."""

from __future__ import annotations

import datetime as dt

from tests.real import REST_CAPTURE, WS_CAPTURE
from tickarchive.ingest.replay import QuestDBSink, replay_files
from tickarchive.settings import Settings
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.venues import deribit

DERIBIT = deribit.build(Settings())


def test_replay_real_captures_into_questdb(questdb_clean: QuestDBHandle) -> None:
    sink = QuestDBSink(questdb_clean.ilp_conf, flush_rows=100)
    # QuestDB 9.3.4 negotiates the newest ILP protocol over HTTP (v3; binary doubles since v2)
    assert sink._encoder.protocol_version >= 2
    stats = replay_files([WS_CAPTURE, REST_CAPTURE], sink, DERIBIT)
    assert stats.rows == {"quotes": 89, "book_changes": 152, "instruments": 1017}
    questdb_clean.wait_for_rows("quotes", 89)
    questdb_clean.wait_for_rows("book_changes", 152)
    questdb_clean.wait_for_rows("instruments", 1017)
    (row,) = questdb_clean.query(
        "SELECT ts, recv_ts, bid_price, bid_amount, bid_iv, ask_iv, mark_iv, delta, gamma, vega, theta, rho,"
        " underlying_index, estimated_delivery_price, volume_24h FROM quotes"
        " WHERE instrument = 'ETH-30JUL21-2800-C' ORDER BY ts LIMIT 1"
    )
    assert row[0] == dt.datetime(2021, 7, 22, 22, 42, 3, 632000)
    assert row[1] == dt.datetime(2021, 7, 22, 22, 42, 3, 804855)
    assert row[2:] == (
        0.0015,
        4714.0,
        115.62,
        125.63,
        120.74,
        0.03127,
        0.0002,
        0.20072,
        -1.64029,
        0.01188,
        "ETH-30JUL21",
        2006.72,
        869.0,
    )
    # empty sides are NULL, not 0
    (empty,) = questdb_clean.query(
        "SELECT bid_price, bid_amount, bid_iv, ask_price, mark_iv FROM quotes"
        " WHERE instrument = 'ETH-27AUG21-4000-P' ORDER BY ts LIMIT 1"
    )
    assert empty == (None, None, None, None, 117.2)
    chain = questdb_clean.query(
        "SELECT change_id, prev_change_id, action, side, price, amount FROM book_changes"
        " WHERE instrument = 'BTC-24SEP21-8000-P' AND NOT is_snapshot ORDER BY ts, change_id LIMIT 2"
    )
    assert chain == [
        (33195894355, 33195894164, "new", "ask", 0.001, 2.6),
        (33195894358, 33195894355, "delete", "ask", 0.001, 0.0),
    ]
    (snap,) = questdb_clean.query(
        "SELECT count(), sum(amount) FROM book_changes WHERE instrument = 'ETH-30JUL21-2800-C' AND is_snapshot"
    )
    assert snap == (16, 4714.0 + 861.0 + 1.0 + 873.0 + 167.0 + 5 + 5 + 26 + 4 + 100 + 5 + 50 + 1 + 25 + 13 + 1)
    (n_eth,) = questdb_clean.query("SELECT count() FROM instruments WHERE base_currency = 'ETH' AND kind = 'option'")
    assert n_eth == (418,)
    # replaying the same input again changes nothing (DEDUP UPSERT KEYS)
    replay_files([WS_CAPTURE], QuestDBSink(questdb_clean.ilp_conf), DERIBIT)
    questdb_clean.wait_for_wal()
    assert questdb_clean.count("quotes") == 89
    assert questdb_clean.count("book_changes") == 152
