"""The QuestDB writer against a real QuestDB: checkpoint only on acknowledgement, rows kept
across failures, replay from the checkpoint after a restart (DEDUP absorbs the overlap)."""

from __future__ import annotations

from pathlib import Path

from tests.real import WS_CAPTURE
from tickarchive.domain import (
    BookChange,
    EncodedRows,
    Event,
    Gap,
    GapKind,
    GapStatus,
    IndexTick,
    QuoteTick,
    TradeSource,
    TradeTick,
)
from tickarchive.ingest.collector import record_decoder
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.journal.files import Damage
from tickarchive.ingest.journal.format import decode_at
from tickarchive.ingest.metrics import CollectorMetrics
from tickarchive.settings import Settings, WriterSettings
from tickarchive.store.ilp_http import IlpHttpTransport
from tickarchive.store.questdb_writer import QuestDBWriter
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.store.writer_contract import Refused, ilp_conf
from tickarchive.venues import deribit
from tickarchive.venues.deribit.adapter import events_of_frame
from tickarchive.venues.deribit.normalize import Notification, parse_frame


def _journal_capture(j: Journal) -> dict[type, int]:
    """Append the real 2021 capture to the journal; count the rows it holds by type."""
    _, records = read_capture(WS_CAPTURE)
    counts: dict[type, int] = {}
    for r in records:
        j.append(r.frame, r.recv_ts_us, "c0")
        o = parse_frame(r.frame, r.recv_ts_us)
        if type(o) is Notification:
            for e in o.events:
                counts[type(e)] = counts.get(type(e), 0) + 1
    return counts


async def test_start_up_replays_the_journal_from_the_checkpoint(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    conf = ilp_conf(qdb.host, qdb.http_port, 10.0)
    with Journal.open(tmp_path / "j") as j:
        counts = _journal_capture(j)
        w = QuestDBWriter(conf, WriterSettings(flush_rows=50), j, DECODE)
        assert not w.live
        assert w.next_seq == 1
        while not w.live:  # what the writer task does at start-up
            w._catch_up_step()
            assert await w.flush()
        assert w.acked_seq == j.last_seq  # acknowledged
        assert w.stats.caught_up_records == j.last_seq
        w.close()
        assert j.acked_seq == j.last_seq  # the durable checkpoint follows acknowledgement
    qdb.wait_for_wal()
    assert qdb.count("quotes") == counts[QuoteTick] == 89
    assert qdb.count("book_changes") == counts[BookChange]
    # the exact values of a real frame made it through: an option ticker of 2021-07-22
    row = qdb.query(
        "SELECT cast(ts AS long), bid_price, bid_amount, ask_price, ask_amount, bid_iv, ask_iv, mark_iv, "
        "underlying_price, underlying_index, delta, gamma, vega, theta, rho, open_interest "
        "FROM quotes WHERE instrument = 'ETH-30JUL21-2800-C' ORDER BY ts LIMIT 1"
    )
    assert row == [
        (
            1626993723632000,
            0.0015,
            4714.0,
            0.0025,
            873.0,
            115.62,
            125.63,
            120.74,
            2003.61,
            "ETH-30JUL21",
            0.03127,
            0.0002,
            0.20072,
            -1.64029,
            0.01188,
            12685.0,
        )
    ]

    # a restart with nothing new (and no safety window) replays nothing
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(conf, WriterSettings(replay_window_s=0), j, DECODE)
        w._catch_up_step()
        assert w.live
        assert w.stats.caught_up_records == 0
        j.commit(0)  # no-op: the checkpoint never goes back
        assert j.acked_seq == j.last_seq
        w.close()


async def test_a_restart_resends_what_was_acknowledged_within_the_safety_window(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    """Finding 5 of issue #14: QuestDB acknowledges a commit once it is in its WAL files in
    the page cache; an OS crash or a power loss can lose the last ~30 s of them, which the
    checkpoint already passed. At every start the writer re-sends what was acknowledged
    within ``writer.replay_window_s`` before the checkpoint. Simulated here: QuestDB loses
    the acknowledged quotes (TRUNCATE), the writer restarts, the window brings back the
    ones received within it and nothing older."""
    qdb = questdb_clean
    conf = ilp_conf(qdb.host, qdb.http_port, 10.0)
    _, records = read_capture(WS_CAPTURE)
    recs = [r for r in records if b'"channel":"ticker.' in r.frame]
    t_last = recs[-1].recv_ts_us
    with Journal.open(tmp_path / "j") as j:
        for r in recs:
            j.append(r.frame, r.recv_ts_us, "c0")
        w = QuestDBWriter(conf, WriterSettings(replay_window_s=0), j, DECODE)
        while not w.live:
            w._catch_up_step()
            assert await w.flush()
        w.close()
        assert j.acked_seq == j.last_seq
    qdb.wait_for_wal()
    assert qdb.count("quotes") == len(recs)
    qdb.query("TRUNCATE TABLE quotes")  # the "power loss": acknowledged rows gone
    window_s = 3.0
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(conf, WriterSettings(replay_window_s=window_s), j, DECODE)
        inside = [r for r in recs if r.recv_ts_us >= t_last - window_s * 1e6]
        assert 0 < len(inside) < len(recs)
        assert w.replayed_records == len(inside)
        while not w.live:
            w._catch_up_step()
            assert await w.flush()
        w.close()
    qdb.wait_for_wal()
    assert qdb.count("quotes") == len(inside)


async def test_a_failed_flush_keeps_the_rows_and_the_checkpoint(
    tmp_path: Path, questdb_clean: QuestDBHandle, dead_port: int
) -> None:
    qdb = questdb_clean
    good = ilp_conf(qdb.host, qdb.http_port, 5.0)
    dead = ilp_conf("127.0.0.1", dead_port, 1.0)
    target = {"conf": dead}

    def factory(_conf: str) -> IlpHttpTransport:
        return IlpHttpTransport.from_conf(target["conf"])

    settings = WriterSettings(retry_min_s=0.01, retry_max_s=0.02)
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(good, settings, j, DECODE, transport_factory=factory)
        w._catch_up_step()  # empty journal: live at once
        assert w.live
        _, records = read_capture(WS_CAPTURE)
        expected = 0
        for r in records:
            seq = j.append(r.frame, r.recv_ts_us, "c0")
            evs: list[Event] = events_of_record_from(r.frame, r.recv_ts_us)
            expected += sum(type(e) is TradeTick for e in evs)
            w.offer(seq, evs)
        buffered = w.buffered_rows
        assert buffered > 0
        assert not await w.flush()  # QuestDB unreachable
        assert w.stats.flush_errors == 2  # one per table transaction (quotes, book_changes)
        assert not w.healthy
        assert w.buffered_rows == buffered
        assert j.acked_seq == 0  # nothing lost, nothing claimed
        assert w.acked_seq == 0
        assert not await w.flush()
        assert w.buffered_rows == buffered
        target["conf"] = good  # QuestDB is back
        assert await w.flush()
        assert w.buffered_rows == 0
        assert w.acked_seq == j.acked_seq == j.last_seq  # the first commit is immediate
        assert w.healthy
        w.close()
    qdb.wait_for_wal()
    assert qdb.count("quotes") == 89
    assert qdb.count("trades") == expected


def events_of_record_from(frame: bytes, recv_ts_us: int) -> list[Event]:
    return events_of_frame(frame, recv_ts_us)


DECODE = record_decoder(deribit.build(Settings()))


async def test_tables_flush_concurrently_and_a_failed_table_alone_is_resent(
    tmp_path: Path, questdb_clean: QuestDBHandle, dead_port: int
) -> None:
    """One sender per table: the tables of a batch go out together; when one of them fails,
    the others are acknowledged once and never resent, the failed one keeps its rows, and
    the checkpoint waits until every table of the batch is acknowledged."""
    qdb = questdb_clean
    good = ilp_conf(qdb.host, qdb.http_port, 5.0)
    dead = ilp_conf("127.0.0.1", dead_port, 1.0)
    made: list[str] = []
    failing = [True]

    def factory(_conf: str) -> IlpHttpTransport:
        made.append("dead" if failing[0] and len(made) == 1 else "good")  # the second table's sender fails
        return IlpHttpTransport.from_conf(dead if made[-1] == "dead" else good)

    settings = WriterSettings(retry_min_s=0.01, retry_max_s=0.02)
    metrics = CollectorMetrics()
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(good, settings, j, DECODE, metrics, transport_factory=factory)
        w._catch_up_step()
        counts: dict[str, int] = {}
        _, records = read_capture(WS_CAPTURE)
        for r in records:
            seq = j.append(r.frame, r.recv_ts_us, "c0")
            evs = events_of_record_from(r.frame, r.recv_ts_us)
            for e in evs:
                name = {QuoteTick: "quotes", BookChange: "book_changes", TradeTick: "trades"}[type(e)]
                counts[name] = counts.get(name, 0) + 1
            w.offer(seq, evs)
        assert set(counts) == {"quotes", "book_changes"}  # the capture holds no trades
        assert not await w.flush()
        assert made == ["good", "dead"]  # one sender per table
        (batch,) = w._pending
        (failed,) = batch.tables  # only the failed table is still pending
        assert batch.tables[failed][1] == counts[failed]
        assert w.stats.stored_rows == {t: n for t, n in counts.items() if t != failed}
        assert metrics.registry.get_sample_value("tickarchive_questdb_flush_errors_total", {"table": failed}) == 1
        assert j.acked_seq == 0  # not every table acknowledged
        assert w.acked_seq == 0
        assert w.buffered_rows == counts[failed]
        failing[0] = False  # QuestDB reachable again
        assert await w.flush()
        assert made == ["good", "dead", "good"]  # only the failed table was sent again
        assert w.stats.stored_rows == counts  # acknowledged once each: nothing resent
        assert w.acked_seq == j.acked_seq == j.last_seq
        for t, n in counts.items():
            assert metrics.registry.get_sample_value("tickarchive_stored_rows_total", {"table": t}) == n
            assert metrics.registry.get_sample_value("tickarchive_ticks_total", {"table": t}) == n
        w.close()
    qdb.wait_for_wal()
    assert qdb.count("quotes") == counts["quotes"] == 89
    assert qdb.count("book_changes") == counts["book_changes"]


async def test_ack_lag_comes_from_live_market_rows_only(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    """Gaps and backfilled trades carry old exchange times: they do not set the ack lag;
    each batch records its oldest and its newest live row."""
    qdb = questdb_clean
    metrics = CollectorMetrics()
    t0 = 1_763_000_000_000_000  # µs
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 5.0), WriterSettings(), j, DECODE, metrics)
        w._catch_up_step()
        w.add_side([Gap(GapKind.DISCONNECT, "*", t0 - 600_000_000, t0, "connection lost", "c0", GapStatus.OPEN)])
        w.add_side(
            [TradeTick("ETH-A", t0 - 300_000_000, t0, "ETH-1", 1, 0.05, 1.0, "buy", source=TradeSource.BACKFILL)]
        )
        w.offer(j.append(b"{}", t0 + 30_000, "c0"), [QuoteTick("ETH-A", t0 + 10_000, t0 + 30_000, bid_price=0.01)])
        w.offer(j.append(b"{}", t0 + 60_000, "c0"), [IndexTick("eth_usd", t0 + 50_000, t0 + 60_000, 2000.0)])
        w.offer(
            j.append(b"{}", t0 + 90_000, "c0"),
            [TradeTick("ETH-A", t0 + 20_000, t0 + 90_000, "ETH-2", 2, 0.05, 1.0, "buy")],
        )
        w._take()
        (batch,) = w._pending
        assert (batch.oldest_ts_us, batch.newest_ts_us) == (t0 + 10_000, t0 + 50_000)
        assert metrics.registry.get_sample_value("tickarchive_ticks_total", {"table": "trades"}) == 2
        assert await w.flush()
        assert metrics.registry.get_sample_value("tickarchive_ack_lag_seconds_count") == 2  # oldest + newest
        # a batch of side rows only (a backfill) records no ack lag
        w.add_side(
            [TradeTick("ETH-A", t0 - 200_000_000, t0, "ETH-3", 3, 0.05, 1.0, "buy", source=TradeSource.BACKFILL)]
        )
        assert await w.flush()
        assert metrics.registry.get_sample_value("tickarchive_ack_lag_seconds_count") == 2
        w.close()


def test_a_record_offered_ahead_of_its_turn_waits_for_the_ones_before(tmp_path: Path, dead_port: int) -> None:
    """A side record journaled while a connection's batch is being offered comes in
    ahead of the batch's rest: held, then taken in seq order; a seq already passed sends
    the writer to the journal (nothing lost either way)."""
    tick = IndexTick("eth_usd", 1_700_000_000_000_000, 1_700_000_000_100_000, 2000.0)
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf("127.0.0.1", dead_port, 1.0), WriterSettings(), j, DECODE)
        w._catch_up_step()  # empty journal: live
        for _ in range(4):
            j.append(b"{}", 1, "c0")
        w.offer(1, [tick])
        w.offer(3, [tick])  # ahead: held
        assert (w.next_seq, w.buffered_rows) == (2, 1)
        w.offer(2, [tick])  # the missing one: 2 and the held 3 are taken
        assert (w.next_seq, w.buffered_rows) == (4, 3)
        assert w.stats.out_of_order_offers == 0
        assert w.live
        w.offer(2, [tick])  # already passed: a caller bug; the journal is read instead
        assert not w.live
        assert w.stats.out_of_order_offers == 1
        w.close()


def _index_row(ts_us: int, price: str = "1.5") -> bytes:
    return f"index_ticks,index_name=eth_usd recv_ts={ts_us}t,price={price} {ts_us}t\n".encode()


async def test_rows_questdb_refuses_are_set_aside_and_everything_else_flows(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    """Finding 3 of issue #14: a batch QuestDB refuses because of one row (a 400: a value of
    the wrong type) was retried without end and every later batch waited behind it. The row
    is isolated and handed over with QuestDB's message; the rest of the batch, and every
    later batch, is stored; the checkpoint moves on."""
    qdb = questdb_clean
    t0 = 1_763_000_000_000_000
    refused: list[Refused] = []
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 5.0), WriterSettings(), j, DECODE,
                          on_refused=refused.append)
        w._catch_up_step()
        good = [_index_row(t0 + i) for i in range(50)]
        bad = _index_row(t0 + 25, price='"abc"')  # QuestDB: cast error, HTTP 400
        for i, row in enumerate([*good[:25], bad, *good[25:]]):
            seq = j.append(b"{}", t0 + i, "c0")
            w.offer(seq, [EncodedRows("index_ticks", row, 1, "eth_usd", t0 + i)])
        assert await w.flush()
        assert w.acked_seq == j.last_seq  # nothing left behind the refused row
        later = j.append(b"{}", t0 + 100, "c0")
        w.offer(later, [EncodedRows("index_ticks", _index_row(t0 + 100), 1, "eth_usd", t0 + 100)])
        assert await w.flush()
        assert w.acked_seq == later
        w.close()
    ((r,),) = [refused]
    assert (r.kind, r.table, r.seqs) == ("rejected", "index_ticks", (1, 51))
    ((row, message),) = r.rows
    assert row == bad
    assert "HTTP 400" in message
    assert "cast error" in message
    assert w.stats.refused_rows == {"rejected:index_ticks": 1}
    qdb.wait_for_wal()
    assert qdb.count("index_ticks") == 51  # 50 of the batch + the later one


async def test_a_row_past_year_9999_is_set_aside_even_though_questdb_answers_500(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    """QuestDB answers 500 ("write error ... designated timestamp") for a row past year
    9999: a 500 that names a line is isolated like a 400, and the row is set aside once
    QuestDB acknowledged the others; alone in its batch, after a few rounds."""
    qdb = questdb_clean
    t0 = 1_763_000_000_000_000
    far = 253_402_300_800_000_000  # 10000-01-01
    refused: list[Refused] = []
    settings = WriterSettings(retry_min_s=0.01, retry_max_s=0.02)
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 5.0), settings, j, DECODE, on_refused=refused.append)
        w._catch_up_step()
        for i, ts in enumerate([t0, far, t0 + 2]):
            w.offer(j.append(b"{}", t0 + i, "c0"), [EncodedRows("index_ticks", _index_row(ts), 1, "eth_usd", ts)])
        assert await w.flush()
        assert [r.rows[0][0] for r in refused] == [_index_row(far)]
        assert "HTTP 500" in refused[0].rows[0][1]
        # alone in its batch: retried (the server might be failing), then set aside
        w.offer(j.append(b"{}", t0 + 9, "c0"), [EncodedRows("index_ticks", _index_row(far + 1), 1, "eth_usd", far)])
        rounds = 0
        while not await w.flush():
            rounds += 1
            assert rounds < 10
        assert rounds == 2  # SUSPECT_ROUNDS: the third round sets it aside
        assert [r.rows[0][0] for r in refused] == [_index_row(far), _index_row(far + 1)]
        assert w.acked_seq == j.last_seq
        w.close()
    qdb.wait_for_wal()
    assert qdb.count("index_ticks") == 2


async def test_a_value_the_encoder_cannot_write_is_set_aside_not_raised(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    """Finding 4 of issue #14: a frame whose values the Python encoder cannot write (a
    negative timestamp, an integer past 64 bits) raised out of ``offer``/``flush`` and
    ended the collector; on restart the same record killed it again. The row is set aside
    with its record's seq; the rest flows, live and on read-back from the journal."""
    qdb = questdb_clean
    t0 = 1_763_000_000_000_000
    refused: list[Refused] = []
    poison_index = IndexTick("eth_usd", -5, t0, 1.0)
    poison_quote = QuoteTick("ETH-X", 10**19, t0, bid_price=0.1)  # a batched table: encoded at take
    good = [IndexTick("eth_usd", t0 + i, t0 + i, 2.0) for i in range(3)]
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 5.0), WriterSettings(), j, DECODE,
                          on_refused=refused.append)
        w._catch_up_step()
        w.offer(j.append(b"{}", t0, "c0"), [good[0], poison_index, good[1]])
        w.offer(j.append(b"{}", t0 + 1, "c0"), [poison_quote])
        w.offer(j.append(b"{}", t0 + 2, "c0"), [good[2]])
        assert await w.flush()
        assert w.acked_seq == 3
        w.close()
    assert [(r.kind, r.table, r.seqs, [e for e, _ in r.events]) for r in refused] == [
        ("unencodable", "index_ticks", (1, 1), [poison_index]),
        ("unencodable", "quotes", (1, 3), [poison_quote]),
    ]
    assert "non-negative" in refused[0].events[0][1]
    qdb.wait_for_wal()
    assert qdb.count("index_ticks") == 3


async def test_catch_up_reads_through_a_damaged_sealed_segment(tmp_path: Path, questdb_clean: QuestDBHandle) -> None:
    """Finding 4 of issue #14 (second half): a corrupt sealed segment met during the
    writer's catch-up raised out of the catch-up loop, a total ingest outage. The damaged
    record is skipped and reported; every other record of the journal reaches QuestDB."""
    qdb = questdb_clean
    _, records = read_capture(WS_CAPTURE)
    recs = list(records)
    with Journal.open(tmp_path / "j", segment_bytes=16_384) as j:
        for r in recs:
            j.append(r.frame, r.recv_ts_us, "c0")
    segs = sorted((tmp_path / "j").glob("*.tjl"))
    assert len(segs) >= 3
    victim = segs[1]  # sealed
    data = bytearray(victim.read_bytes())
    second = decode_at(bytes(data), 0, victim.name).size  # the segment's second record
    data[second + 40] ^= 0xFF  # a byte of its payload: its CRC fails
    victim.write_bytes(bytes(data))
    damaged: list[Damage] = []
    with Journal.open(tmp_path / "j", segment_bytes=16_384, on_damage=lambda _p, d: damaged.append(d)) as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 10.0), WriterSettings(flush_rows=50), j, DECODE)
        while not w.live:
            w._catch_up_step()
            assert await w.flush()
        assert w.acked_seq == j.last_seq
        w.close()
    ((d,),) = [damaged]
    assert d.segment == victim.name
    assert d.lost_seqs is not None
    assert d.lost_seqs[0] == d.lost_seqs[1]  # exactly one record lost
    lost = recs[d.lost_seqs[0] - 1]
    expected_quotes = sum(
        1 for r in recs if r is not lost and b'"channel":"ticker.' in r.frame
    )
    qdb.wait_for_wal()
    assert qdb.count("quotes") == expected_quotes
