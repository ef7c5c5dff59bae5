"""The collector end to end: the in-process simulator → collector → real QuestDB.

Every test counts exactly against the simulator's send log (what it sent, per
connection, with status) and its trade history (every trade generated, including those
kept off the wire): the fundamental claim of the project. The market is quiesced at the
end of each run (a ``maintenance`` fault: no more market data), the collector is
stopped cleanly (drain + checkpoint), and only then QuestDB is read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from tickarchive.ingest.collector import Collector
from tickarchive.ingest.journal import JournalReader
from tickarchive.ingest.metrics import CHANNELS
from tickarchive.loadtest.sim import SimConfig, Simulator
from tickarchive.settings import (
    DeribitSettings,
    JournalSettings,
    Settings,
    WriterSettings,
    load_settings,
)
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.venues import deribit

from .conditions import stored_rows, until_stored

INFLIGHT_US = 300_000
"""Gap bounds are receive times: the last frame before a fault can be *received* after the
fault struck (it was already in the socket buffers). A fault instant is inside a gap
widened by this much at its start."""

START_MS = int(dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)


def sim_config(tmp_path: Path, **overrides: Any) -> SimConfig:
    cfg = SimConfig(
        seed=11,
        start_ms=START_MS,
        instruments=40,
        rate_per_s=2500.0,
        trades_per_s=60.0,
        # a test_request every second, and a second to answer it (the collector's interval
        # of 10 at 0.1): at 0.02 a loaded machine's collector answered after the 0.2 s the
        # simulator waits, and it closed the connection (a disconnect gap in a run that
        # asserts none)
        heartbeat_scale=0.1,
        sendlog_dir=tmp_path / "sendlog",
    )
    return cfg.replace(**overrides)


def collector_settings(
    connections: int = 3, writer: dict[str, Any] | None = None, **deribit: Any
) -> Settings:
    d: dict[str, Any] = dict(
        connections=connections,
        index_names=("eth_usd",),
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        reconnects_per_s=50.0,
        subscribe_rate_per_s=50.0,
        stale_connection_s=5.0,
    )
    d.update(deribit)
    w: dict[str, Any] = dict(flush_interval_ms=100, retry_min_s=0.1, retry_max_s=0.5)
    w.update(writer or {})
    return load_settings(
        deribit=DeribitSettings(**d),
        journal=JournalSettings(fsync_interval_ms=50, min_free_bytes=0),
        writer=WriterSettings(**w),
    )


async def wait_for(pred: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    """Poll ``pred`` until it holds (a condition, not a duration: the deadline only
    bounds a failure)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


async def more_stored(c: Collector, timeout_s: float = 60.0, **more_rows: int) -> None:
    """Wait until QuestDB acknowledged ``more_rows[table]`` rows of each table beyond
    what it holds now (data flowed meanwhile)."""
    await until_stored(c, timeout_s, **{t: stored_rows(c, t) + n for t, n in more_rows.items()})


def _connects_beyond(driver: Any, before: int) -> Callable[[], bool]:
    return lambda: bool(driver.connects > before)


def against(settings: Settings, qdb: QuestDBHandle) -> Settings:
    """``settings`` writing into ``qdb``."""
    q = settings.questdb.model_copy(update={"host": qdb.host, "http_port": qdb.http_port})
    return settings.model_copy(update={"questdb": q})


def collector_of(settings: Settings, sim: Simulator, qdb: QuestDBHandle, journal_dir: Path) -> Collector:
    """A collector reading ``sim`` (the Deribit adapter pointed at it) into ``qdb``."""
    return Collector(against(settings, qdb), deribit.build(settings, ws_url=sim.ws_url), journal_dir,
                     serve_metrics=False)


@asynccontextmanager
async def running(
    settings: Settings, sim: Simulator, qdb: QuestDBHandle, journal_dir: Path
) -> AsyncIterator[Collector]:
    """A collector running against ``sim``; stopped cleanly (SIGTERM path) on exit."""
    stop = asyncio.Event()
    c = collector_of(settings, sim, qdb, journal_dir)
    task = asyncio.create_task(c.run(stop))
    try:
        await wait_for(lambda: task.done() or c.all_subscribed(), 60, "all channels subscribed")
        if task.done():
            task.result()
        yield c
    finally:
        stop.set()
        await task


async def quiesce(sim: Simulator, c: Collector, timeout_s: float = 60.0) -> None:
    """No more market data; wait until everything journaled is acknowledged and every
    backfill ran (the deadlines only bound a failure)."""
    sim.inject("maintenance", seconds=600)
    await sim.barrier(timeout_s)  # every frame queued before the lock reached the collector's readers
    await wait_for(lambda: not c.ledger.open or all(g.end_us is not None for g in c.ledger.open.values()),
                   timeout_s, "open gaps to close")
    seq = c.journal.last_seq
    await wait_for(lambda: c.writer.acked_seq >= seq, timeout_s, f"writer to acknowledge seq {seq}")
    await wait_for(lambda: c.backfill_idle.is_set(), timeout_s, "backfills")
    seq = c.journal.last_seq
    await wait_for(lambda: c.writer.acked_seq >= seq and c.writer.buffered_rows == 0, timeout_s, "final flush")


def sim_conn_of(sim: Simulator, c: Collector, index: int) -> str:
    """The simulator's id of our connection ``c{index}``."""
    addr = c.drivers[index].local_address
    assert addr is not None
    for conn in sim.connections.values():
        if not conn.closed and conn.remote == str(addr):
            return conn.id
    raise AssertionError(f"no simulator connection for c{index} at {addr}")


# ---- reading QuestDB -------------------------------------------------------------------


def stored_quotes(qdb: QuestDBHandle) -> dict[tuple[str, int], tuple[Any, ...]]:
    rows = qdb.query(
        "SELECT instrument, cast(ts AS long), bid_price, bid_amount, ask_price, ask_amount, bid_iv, ask_iv, "
        "mark_iv, mark_price, underlying_price, underlying_index, index_price, delta, gamma, vega, theta, rho, "
        "open_interest, last_price, state FROM quotes"
    )
    out = {(r[0], r[1]): r[2:] for r in rows}
    assert len(out) == len(rows), "a quote stored twice"
    return out


def stored_trades(qdb: QuestDBHandle) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = qdb.query(
        "SELECT instrument, trade_id, trade_seq, cast(ts AS long), price, amount, iv, index_price, mark_price, "
        "direction, tick_direction, contracts, source FROM trades"
    )
    out = {(r[0], r[1]): r[2:] for r in rows}
    assert len(out) == len(rows), "a trade stored twice"
    return out


def stored_book(qdb: QuestDBHandle) -> dict[tuple[str, int], int]:
    rows = qdb.query("SELECT instrument, change_id, count() FROM book_changes")
    return {(r[0], r[1]): r[2] for r in rows}


def stored_gaps(qdb: QuestDBHandle) -> list[dict[str, Any]]:
    rows = qdb.query(
        "SELECT cast(ts AS long), cast(end_ts AS long), instrument, kind, connection, status, cause FROM gaps"
    )
    keys = ("start_us", "end_us", "instrument", "kind", "connection", "status", "cause")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def sent_book(sim: Simulator, status: str | None = "sent") -> dict[tuple[str, int], tuple[int, int]]:
    """(instrument, change_id) → (largest, total) level rows of the messages sent with it.

    A snapshot carries the change_id of the book's last change, so a change message and a
    (re)subscribe snapshot can share a change_id and a timestamp: their levels then merge
    by the dedup key (ts, instrument, change_id, side, price)."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for r in sim.send_log.rows("book_changes", status=status):
        key = (r["instrument"], r["change_id"])
        big, total = out.get(key, (0, 0))
        out[key] = (max(big, r["n_rows"]), total + r["n_rows"])
    return out


def assert_book_stored(stored: dict[tuple[str, int], int], sim: Simulator, status: str | None = "sent") -> None:
    """Every book message sent is stored with all its level rows, nothing else is."""
    sent = sent_book(sim, status)
    assert set(stored) == set(sent)
    for key, n in stored.items():
        big, total = sent[key]
        assert big <= n <= total, (key, n, big, total)


def history_trades(sim: Simulator) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["instrument_name"], t["trade_id"]): t for t in sim.history.all_trades()}


def check_trade_values(
    stored: dict[tuple[str, str], tuple[Any, ...]], hist: dict[tuple[str, str], dict[str, Any]]
) -> None:
    for key, row in stored.items():
        t = hist[key]
        seq, ts, price, amount, iv, index_price, mark_price, direction, tick_direction, contracts, _src = row
        assert (seq, ts, price, amount) == (t["trade_seq"], t["timestamp"] * 1000, t["price"], t["amount"])
        assert (iv, index_price, mark_price) == (t["iv"], t["index_price"], t["mark_price"])
        assert (direction, tick_direction, contracts) == (t["direction"], t["tick_direction"], t["contracts"])


def journal_tickers(journal_dir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Every ticker notification in the journal, decoded independently (orjson)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for rec in JournalReader(journal_dir).read_from(0):
        if b'"channel":"ticker.' not in rec.frame[:120]:
            continue
        msg = orjson.loads(rec.frame)
        d = msg["params"]["data"]
        out[(d["instrument_name"], d["timestamp"] * 1000)] = d
    return out


def check_quote_values(
    stored: dict[tuple[str, int], tuple[Any, ...]], wire: dict[tuple[str, int], dict[str, Any]]
) -> None:
    for key, row in stored.items():
        d = wire[key]
        (bid, bid_amt, ask, ask_amt, bid_iv, ask_iv, mark_iv, mark, und, und_idx, idx,
         delta, gamma, vega, theta, rho, oi, last, state) = row
        # an empty side is NULL; an IV of 0.0 (Deribit's "no IV") too
        if d["best_bid_amount"]:
            assert (bid, bid_amt, bid_iv) == (d["best_bid_price"], d["best_bid_amount"], d["bid_iv"] or None)
        else:
            assert (bid, bid_amt, bid_iv) == (None, None, None)
        if d["best_ask_amount"]:
            assert (ask, ask_amt, ask_iv) == (d["best_ask_price"], d["best_ask_amount"], d["ask_iv"] or None)
        else:
            assert (ask, ask_amt, ask_iv) == (None, None, None)
        g = d["greeks"]
        assert (delta, gamma, vega, theta, rho) == (g["delta"], g["gamma"], g["vega"], g["theta"], g["rho"])
        assert (mark_iv, mark, und, und_idx, idx) == (
            d["mark_iv"], d["mark_price"], d["underlying_price"], d["underlying_index"], d["index_price"],
        )
        assert (oi, last, state) == (d["open_interest"], d["last_price"], d["state"])


# ---- tests ----------------------------------------------------------------------------


async def test_steady_state_every_row_once_with_exact_values(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=3), sim, qdb, tmp_path / "journal") as c:
            assert [d.name for d in c.drivers] == ["c0", "c1", "c2"]
            assert all(len(s.subscribed_channels) > 10 for s in c.sessions)
            # heartbeat rows come for every connection at once: 6 = at least 2 each
            await until_stored(c, quotes=1200, book_changes=1200, trades=70, collector_heartbeats=6)
            await quiesce(sim, c)
        qdb.wait_for_wal()

        sent_quotes = sim.send_log.keys("quotes")
        quotes = stored_quotes(qdb)
        assert len(sent_quotes) > 1000
        assert set(quotes) == sent_quotes  # every sent quote once, nothing else
        check_quote_values(quotes, journal_tickers(tmp_path / "journal"))

        book = stored_book(qdb)
        assert_book_stored(book, sim)
        assert sum(book.values()) > 1000

        trades = stored_trades(qdb)
        sent_trades = {(i, tid) for i, tid, _seq, _ts in sim.send_log.keys("trades")}
        assert set(trades) == sent_trades
        assert len(trades) > 60
        check_trade_values(trades, history_trades(sim))
        assert {r[-1] for r in trades.values()} == {"ws"}

        index = qdb.query("SELECT cast(ts AS long), price FROM index_ticks")
        assert {("eth_usd", ts) for ts, _p in index} == sim.send_log.keys("index_ticks")
        assert qdb.count("instruments") == len(c.instruments.known)
        hb = qdb.query("SELECT connection, count() FROM collector_heartbeats ORDER BY connection")
        assert [h[0] for h in hb] == ["c0", "c1", "c2"]
        assert all(h[1] >= 2 for h in hb)
        assert stored_gaps(qdb) == []
        assert c.journal.acked_seq == c.journal.last_seq
        assert c.writer.stats.out_of_order_offers == 0  # every record offered in journal order
        m = c.metrics.registry
        assert m.get_sample_value("tickarchive_stored_rows_total", {"table": "quotes"}) == len(quotes)
        assert m.get_sample_value("tickarchive_frames_total", {"connection": "c0", "channel": "trades"})
        # frames are counted per read batch, and every batch is added by the time the
        # socket closes: the counter holds every frame each connection read
        for d in c.drivers:
            counted = [m.get_sample_value("tickarchive_frames_total", {"connection": d.name, "channel": ch}) or 0
                       for ch in CHANNELS]
            assert sum(counted) == d.frames > 0


async def test_twenty_disconnects_reported_and_trades_backfilled(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path, trades_per_s=80.0)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, trades=20)
            drops = []
            for i in range(20):
                target = sim_conn_of(sim, c, i % 2) if c.drivers[i % 2].connected else "all"
                before = c.drivers[i % 2].connects
                drops.append(sim.inject("drop", conn=target))
                await wait_for(_connects_beyond(c.drivers[i % 2], before), 60, "reconnected")
                await wait_for(c.all_subscribed, 60, "resubscribed")
            await more_stored(c, trades=10)
            await quiesce(sim, c)
            reconnects = sum(d.connects - 1 for d in c.drivers)
        qdb.wait_for_wal()

        gaps = [g for g in stored_gaps(qdb) if g["kind"] == "disconnect"]
        assert reconnects >= 20
        assert 1 <= len(gaps) <= reconnects
        for g in gaps:
            assert g["end_us"] is not None
            assert g["instrument"] == "*"
            assert g["status"] == "backfilled", g
        for f in drops:  # every injected drop lies inside a reported gap
            assert any(g["start_us"] - INFLIGHT_US <= f.start_us <= g["end_us"] for g in gaps), f

        # zero trades lost: every trade generated between the first and last one stored
        trades = stored_trades(qdb)
        hist = history_trades(sim)
        first = min(r[1] for r in trades.values())
        last = max(r[1] for r in trades.values())
        expected = {k for k, t in hist.items() if first <= t["timestamp"] * 1000 <= last}
        assert set(trades) == expected
        check_trade_values(trades, hist)
        backfilled = {k for k, r in trades.items() if r[-1] == "backfill"}
        assert backfilled, "drops while trades flow must need a backfill"
        sent_ws = {(i, tid) for i, tid, _s, _t in sim.send_log.keys("trades")}
        assert {k for k, r in trades.items() if r[-1] == "ws"} <= sent_ws

        # quotes: nothing stored that was not sent, once each; what was sent and is
        # missing died in the dropped sockets, inside a gap
        quotes = stored_quotes(qdb)
        sent = sim.send_log.keys("quotes")
        assert set(quotes) <= sent
        for inst, ts in sent - set(quotes):
            assert any(g["start_us"] - INFLIGHT_US <= ts <= g["end_us"] for g in gaps), (inst, ts)
        assert c.metrics.registry.get_sample_value("tickarchive_gaps_total", {"kind": "disconnect"}) == len(gaps)

        # the gap rows and the backfilled trades are in the journal (side records): a
        # replay of it rebuilds exactly what QuestDB holds of them
        replayed = replay_journal(tmp_path / "journal")
        assert {
            (g.start_us, g.end_us, g.instrument, g.kind.value, g.connection, g.status.value, g.cause)
            for g in replayed["gaps"]
        } >= {tuple(g.values()) for g in stored_gaps(qdb)}
        assert {
            (t.instrument, t.trade_id) for t in replayed["trades"] if t.source.value == "backfill"
        } == backfilled


class _ListSink:
    """A replay sink that keeps the events per table (an event sink, not columnar)."""

    columnar = False

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = {}

    def add(self, table: Any, data: Any) -> None:
        raise AssertionError("an event sink is given events (add_events)")

    def add_events(self, table: Any, events: list[Any]) -> None:
        self.events.setdefault(table.name, []).extend(events)

    def close(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.events.items()}

    def abort(self) -> None:
        self.events.clear()


def replay_journal(journal_dir: Path) -> dict[str, list[Any]]:
    from tickarchive.ingest.replay import Replayer

    sink = _ListSink()
    rp = Replayer(sink, deribit.build(Settings()).replay_decoder("replay"))
    for rec in JournalReader(journal_dir).read_from(0):
        rp.feed(rec.frame, rec.recv_ts_us)
    rp.finish()
    return sink.events


async def test_stale_connection_reconnects_with_a_stale_gap(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    settings = collector_settings(connections=2, stale_connection_s=1.5)
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(settings, sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, quotes=200)
            victim = sim_conn_of(sim, c, 1)
            fault = sim.inject("silence", conn=victim, seconds=5)
            await wait_for(lambda: c.drivers[1].connects >= 2, 60, "c1 to reconnect")
            await wait_for(c.all_subscribed, 60, "resubscribed")
            await more_stored(c, quotes=200)
            await quiesce(sim, c)
        qdb.wait_for_wal()
        all_gaps = stored_gaps(qdb)
        # on a loaded machine a stalled event loop can make c0 look stale too, or let the
        # simulator drop a connection (a disconnect gap, then trade_seq gaps on the trades
        # it missed): the same handling, every such gap closed and backfilled
        assert {g["kind"] for g in all_gaps} <= {"stale", "disconnect", "trade_seq"}
        assert all(g["status"] == "backfilled" for g in all_gaps), all_gaps
        assert {g["instrument"] for g in all_gaps if g["kind"] != "trade_seq"} == {"*"}
        gaps = [g for g in all_gaps if g["connection"] == "c1" and g["kind"] == "stale"]
        assert len(gaps) == 1
        g = gaps[0]
        assert g["start_us"] - INFLIGHT_US <= fault.start_us
        for r in sim.send_log.rows("quotes", status="silenced"):  # what the silence withheld
            assert g["start_us"] - INFLIGHT_US <= r["ts_us"]
        assert g["end_us"] >= fault.start_us + 1_500_000  # at least the stale threshold
        assert "no data" in g["cause"]
        quotes = stored_quotes(qdb)
        sent = sim.send_log.keys("quotes")
        assert set(quotes) <= sent  # silenced quotes were never sent
        if len(all_gaps) == 1:
            assert set(quotes) == sent
        assert sim.send_log.count("quotes", status="silenced") > 0
        c1_drops = sum(1 for g in all_gaps if g["connection"] == "c1" and g["kind"] == "disconnect")
        assert c.metrics.registry.get_sample_value("tickarchive_reconnects_total", {"connection": "c1"}) == 1 + c1_drops


async def test_skipped_change_ids_resubscribe_only_that_book(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, book_changes=200)
            fault = sim.inject("skip_book", count=2)
            (inst,) = fault.instruments
            await wait_for(lambda: fault.end_us is not None, 60, "the withheld changes")
            await wait_for(lambda: any(g.kind == "book_seq" for g in c.ledger.history if g.end_us), 60, "resync")
            await quiesce(sim, c)
            reconnects = sum(d.connects for d in c.drivers)
        qdb.wait_for_wal()
        assert reconnects == 2
        gaps = stored_gaps(qdb)
        assert [(g["kind"], g["instrument"], g["status"]) for g in gaps] == [("book_seq", inst, "unrecoverable")]
        g = gaps[0]
        withheld = sim.send_log.rows("book_changes", status="skipped")
        assert len(withheld) == 2
        assert {r["instrument"] for r in withheld} == {inst}
        for r in withheld:
            assert g["start_us"] <= r["ts_us"] <= g["end_us"] + 1000
        snapshots = [r for r in sim.send_log.rows("book_changes") if r["is_snapshot"]]
        per_inst: dict[str, int] = {}
        for r in snapshots:
            per_inst[r["instrument"]] = per_inst.get(r["instrument"], 0) + 1
        assert per_inst.pop(inst) == 2  # only that book was resubscribed
        assert set(per_inst.values()) == {1}
        assert_book_stored(stored_book(qdb), sim)
        assert set(stored_quotes(qdb)) == sim.send_log.keys("quotes")


async def test_skipped_trade_seq_is_backfilled(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path, trades_per_s=100.0, instruments=20)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, trades=30)
            counts: dict[str, int] = {}
            for t in sim.history.all_trades():
                counts[t["instrument_name"]] = counts.get(t["instrument_name"], 0) + 1
            inst = max(counts, key=lambda k: counts[k])
            fault = sim.inject("skip_trades", instrument=inst, count=2)
            await wait_for(lambda: fault.end_us is not None, 60, "the withheld trades")
            await wait_for(lambda: any(g.kind == "trade_seq" for g in c.ledger.history), 60, "the next trade")
            await quiesce(sim, c)
        qdb.wait_for_wal()
        gaps = stored_gaps(qdb)
        assert [(g["kind"], g["instrument"], g["status"]) for g in gaps] == [("trade_seq", inst, "backfilled")]
        withheld = sim.send_log.rows("trades", status="skipped")
        assert len(withheld) == 2
        trades = stored_trades(qdb)
        for r in withheld:
            key = (r["instrument"], r["trade_id"])
            assert trades[key][-1] == "backfill"
            assert gaps[0]["start_us"] <= r["ts_us"] <= gaps[0]["end_us"]
        sent = {(i, tid) for i, tid, _s, _t in sim.send_log.keys("trades")}
        assert set(trades) == sent | {(r["instrument"], r["trade_id"]) for r in withheld}  # zero lost
        assert {k for k, r in trades.items() if r[-1] == "backfill"} == {
            (r["instrument"], r["trade_id"]) for r in withheld
        }
        check_trade_values(trades, history_trades(sim))
        assert c.metrics.registry.get_sample_value("tickarchive_backfilled_trades_total") == 2


async def test_malformed_frames_and_unknown_fields_are_kept_and_counted(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=1), sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, quotes=100)
            sim.inject("malformed", count=8)
            sim.inject("unknown_channel", count=3)
            sim.inject("extra_fields", count=50)
            # the next 50 notifications carry the unknown field; quiesce's barrier then
            # proves every one of them (and the malformed frames) reached the collector
            await wait_for(lambda: all(cn.extra_fields_left == 0 for cn in sim.connections.values()), 60,
                           "the notifications with an unknown field")
            await quiesce(sim, c)
            stats = dict(c.stats.malformed)
        qdb.wait_for_wal()
        assert stats == {
            "invalid_json": 4,  # a truncated frame and "not json at all", twice each
            "unexpected_shape": 2,  # channel null
            "invalid_data:book": 2,  # data "x"
        }  # deribit_volatility_index is a known family we do not store: journaled, not malformed
        frames = [r.frame for r in JournalReader(tmp_path / "journal").read_from(0)]
        assert frames.count(b"not json at all") == 2  # kept in the journal, byte for byte
        assert sum(b"deribit_volatility_index" in f for f in frames) == 3
        assert sum(b"sim_unknown_field" in f for f in frames) == 50
        m = c.metrics.registry
        assert m.get_sample_value("tickarchive_malformed_frames_total", {"kind": "invalid_json"}) == 4
        # the process lived on and stored every sent row, unknown fields or not
        assert set(stored_quotes(qdb)) == sim.send_log.keys("quotes")
        assert_book_stored(stored_book(qdb), sim)


async def test_listing_and_expiry_mid_run(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    # 4 s of wall time before the 08:00 expiry; 30 simulated seconds per wall second (the
    # collector has listed and subscribed by then: with 2 s a loaded machine's collector
    # could still be starting when the expiring instruments went)
    start = int(dt.datetime(2026, 11, 24, 7, 58, tzinfo=dt.UTC).timestamp() * 1000)
    cfg = sim_config(tmp_path, start_ms=start, time_scale=30.0, instruments=40, settle_delay_s=30.0)
    async with Simulator(cfg) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            expiring = {n for n in c.instruments.live_names() if "-24NOV26-" in n}
            assert expiring
            await wait_for(lambda: c.stats.expiries >= len(expiring), 60, "the expiry")
            await wait_for(lambda: c.stats.listings > 0, 60, "the listing")
            await wait_for(c.all_subscribed, 60, "subscribed to the listing")
            listed = c.instruments.live_names()
            desired = set().union(*(s.desired_channels for s in c.sessions))
            assert not {ch for ch in desired if "-24NOV26-" in ch}  # expired: unsubscribed
            new = {n for n in listed if n not in expiring and f"ticker.{n}.100ms" in desired}

            def listing_quoted() -> bool:
                opened = {r["instrument"] for r in sim.send_log.rows("instruments") if r["state"] == "open"}
                return bool(opened & {i for i, _ts in sim.send_log.keys("quotes")})

            await wait_for(listing_quoted, 60, "a quote of a new listing", poll_s=0.2)
            await quiesce(sim, c)
        qdb.wait_for_wal()
        states = qdb.query("SELECT instrument, state FROM instruments WHERE state = 'settlement'")
        assert {r[0] for r in states} == expiring
        opened = {r[0] for r in qdb.query("SELECT instrument FROM instruments WHERE state = 'open'")}
        listed_now = {r["instrument"] for r in sim.send_log.rows("instruments") if r["state"] == "open"}
        assert listed_now
        assert listed_now <= opened
        assert listed_now <= new
        quoted = {r[0] for r in qdb.query("SELECT DISTINCT instrument FROM quotes")}
        assert quoted & listed_now  # the new strikes are being collected
        assert set(stored_quotes(qdb)) == sim.send_log.keys("quotes")


async def test_refused_subscriptions_become_rejected_gaps_then_resolve(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c:
            await until_stored(c, quotes=100)
            # c1 resubscribes into the refusal: 3 s for it to reconnect (1 s could pass on a
            # loaded machine before it asked, and then nothing was refused)
            fault = sim.inject("reject", seconds=3.0, mode="error")
            sim.inject("drop", conn=sim_conn_of(sim, c, 1))
            await wait_for(lambda: c.stats.rejected > 0, 60, "the refusal")
            await wait_for(c.all_subscribed, 60, "the retried subscription to be granted")
            await more_stored(c, quotes=100)
            await quiesce(sim, c)
            c1_instruments = {
                ch.split(".")[1] for ch in c.sessions[1].desired_channels if ch.startswith("ticker.")
            }
        qdb.wait_for_wal()
        gaps = stored_gaps(qdb)
        rejected = [g for g in gaps if g["kind"] == "rejected"]
        assert {g["instrument"] for g in rejected} == c1_instruments  # one row per refused instrument
        for g in rejected:
            assert g["connection"] == "c1"
            assert g["status"] == "resolved"
            assert fault.start_us <= g["start_us"] <= fault.end_us  # refused inside the fault window
            assert g["end_us"] >= fault.end_us  # granted only after it
            assert "10040" in g["cause"]
        assert {g["kind"] for g in gaps} == {"rejected", "disconnect"}
        assert set(stored_quotes(qdb)) <= sim.send_log.keys("quotes")
