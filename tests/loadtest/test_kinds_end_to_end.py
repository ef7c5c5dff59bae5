"""Every Deribit kind end to end (issue #15): ETH and BTC options, dated futures,
perpetuals and option combos are listed by the simulator, streamed, collected by the
collector configured with ``currencies=["ETH","BTC"]`` and ``kinds=["option","future",
"option_combo"]``, stored in QuestDB and reconciled with zero loss: the stored rows are
exactly the simulator's send log (quotes, book rows, trades, index ticks), every
instrument is in ``instruments``, every combo's legs in ``combo_legs``, and the values
of the new columns are the wire's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.ingest.conditions import until_stored
from tests.ingest.test_collector import (
    assert_book_stored,
    check_quote_values,
    check_trade_values,
    collector_settings,
    history_trades,
    journal_tickers,
    quiesce,
    running,
    sim_config,
    stored_book,
    stored_gaps,
    stored_quotes,
    stored_trades,
    wait_for,
)
from tickarchive.loadtest.sim import Simulator
from tickarchive.store.stack.handles import QuestDBHandle

KINDS = ("option", "future", "option_combo")


def _kind(name: str) -> str:
    if name.endswith("-PERPETUAL"):
        return "perpetual"
    if name.count("-") == 1:
        return "future"
    return "option" if name[-2:] in ("-C", "-P") else "option_combo"


def _new_columns(qdb: QuestDBHandle) -> dict[tuple[str, int], tuple[Any, ...]]:
    rows = qdb.query(
        "SELECT instrument, cast(ts AS long), high_24h, low_24h, price_change_24h, volume_usd_24h, "
        "volume_notional_24h, interest_value, implied_bid, implied_ask, combo_state, channel_interval, "
        "funding_8h, current_funding, settlement_price FROM quotes"
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def _check_new_columns(
    stored: dict[tuple[str, int], tuple[Any, ...]], wire: dict[tuple[str, int], dict[str, Any]]
) -> None:
    for key, row in stored.items():
        d = wire[key]
        high, low, change, usd, notional, interest, ibid, iask, combo_state, interval, f8h, cf, settle = row
        s = d.get("stats") or {}
        assert (high, low, change) == (s.get("high"), s.get("low"), s.get("price_change")), key
        assert (usd, notional) == (s.get("volume_usd"), s.get("volume_notional")), key
        assert (interest, f8h, cf) == (d.get("interest_value"), d.get("funding_8h"), d.get("current_funding")), key
        assert (ibid, iask, combo_state) == (d.get("implied_bid"), d.get("implied_ask"), d.get("combo_state")), key
        assert settle == d.get("settlement_price"), key
        assert interval == "100ms"


async def test_every_kind_collected_with_zero_loss(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    cfg = sim_config(tmp_path, currencies=("ETH", "BTC"), kinds=KINDS, instruments=40, combos=3, trades_per_s=120.0)
    settings = collector_settings(connections=3, currencies=("ETH", "BTC"), kinds=KINDS, index_names=())
    async with Simulator(cfg) as sim:
        async with running(settings, sim, qdb, tmp_path / "journal") as c:
            listed = {i.name for i in sim.model.listed()}  # type: ignore[union-attr]
            assert set(c.instruments.live_names()) == listed
            pairs = {(n.split("-")[0], _kind(n)) for n in listed}

            def every_kind_flowed() -> bool:  # quoted (each currency and kind) and traded
                quoted = {(n.split("-")[0], _kind(n)) for n, _ts in sim.send_log.keys("quotes")}
                traded = {_kind(i) for i, _tid, _seq, _ts in sim.send_log.keys("trades")}  # sent, not only made
                indexed = {n for n, _ts in sim.send_log.keys("index_ticks")}  # one a second (index_interval_ms)
                return (quoted == pairs and traded >= {"option", "future", "perpetual", "option_combo"}
                        and indexed == {"eth_usd", "btc_usd"})

            await wait_for(every_kind_flowed, 60,
                           "quotes of every kind and currency, trades of every kind, index ticks of both currencies",
                           poll_s=0.2)
            await until_stored(c, quotes=1000, book_changes=1000, trades=100)
            await quiesce(sim, c)
        qdb.wait_for_wal()

        by_kind = Counter((n.split("-")[0], _kind(n)) for n in listed)
        for cur in ("ETH", "BTC"):
            for kind in ("option", "future", "perpetual", "option_combo"):
                assert by_kind[(cur, kind)] > 0, (cur, kind)

        # quotes: exactly the send log, every kind of both currencies, values as sent
        quotes = stored_quotes(qdb)
        assert set(quotes) == sim.send_log.keys("quotes")
        assert {(n.split("-")[0], _kind(n)) for n, _ts in quotes} == set(by_kind)
        wire = journal_tickers(tmp_path / "journal")
        check_quote_values({k: v for k, v in quotes.items() if _kind(k[0]) == "option"}, wire)
        _check_new_columns(_new_columns(qdb), wire)

        # book rows: every message sent, every level row, nothing else
        book = stored_book(qdb)
        assert_book_stored(book, sim)
        assert {_kind(n) for n, _cid in book} >= {"option", "future", "perpetual"}

        # trades: every trade sent (a combo trade's legs from both the combo and the option
        # channels, once), values as generated
        trades = stored_trades(qdb)
        sent = {(i, tid) for i, tid, _seq, _ts in sim.send_log.keys("trades")}
        assert set(trades) == sent
        hist = history_trades(sim)
        assert set(trades) <= set(hist)
        check_trade_values({k: v for k, v in trades.items() if _kind(k[0]) == "option"}, hist)
        for key, row in trades.items():  # futures, perpetuals, combos: no IV
            t = hist[key]
            seq, ts, price, amount, iv, _index, mark, direction, tick_direction, contracts, _src = row
            assert (seq, ts, price, amount, mark) == (t["trade_seq"], t["timestamp"] * 1000, t["price"], t["amount"],
                                                      t["mark_price"])
            assert (iv, direction, tick_direction, contracts) == (t.get("iv"), t["direction"], t["tick_direction"],
                                                                 t["contracts"])
        combo_trades = [k for k in trades if _kind(k[0]) == "option_combo"]
        assert combo_trades, "a combo traded (its legs stored with combo_id)"
        leg_rows = qdb.query("SELECT combo_id, combo_trade_id, count() FROM trades WHERE combo_id IS NOT NULL")
        assert {(r[0], r[1]) for r in leg_rows} == {(i, tid) for i, tid in combo_trades}
        assert {_kind(i) for i, _tid in trades} >= {"option", "future", "perpetual"}
        assert {r[-1] for r in trades.values()} == {"ws"}

        # index ticks of both currencies
        index = qdb.query("SELECT index_name, cast(ts AS long) FROM index_ticks")
        assert {(n, ts) for n, ts in index} == sim.send_log.keys("index_ticks")
        assert {n for n, _ts in index} == {"eth_usd", "btc_usd"}

        # instruments of every kind; the combos' legs
        kinds = {r[0]: r[1] for r in qdb.query("SELECT instrument, kind FROM instruments")}
        assert set(kinds) >= listed
        assert {kinds[n] for n in listed} == set(KINDS)
        legs = qdb.query("SELECT combo, instrument, amount FROM combo_legs")
        expected = {
            (i.name, leg, ratio) for i in sim.model.listed() for leg, ratio in i.legs  # type: ignore[union-attr]
        }
        assert {(a, b, c_) for a, b, c_ in legs} == expected
        assert stored_gaps(qdb) == []
        assert c.journal.acked_seq == c.journal.last_seq
