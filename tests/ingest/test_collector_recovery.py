"""Recovery: QuestDB killed and restarted under the collector; the collector SIGKILLed.

The QuestDB test uses its own server (free ports, started and stopped here by PID
through ``store.stack``) so the shared session server is never disturbed. The SIGKILL
test runs ``tickarchive collect`` as a subprocess against the in-process simulator.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.test_collector import (
    collector_settings,
    history_trades,
    quiesce,
    running,
    sent_book,
    sim_config,
    stored_book,
    stored_gaps,
    stored_quotes,
    stored_trades,
    wait_for,
)
from tickarchive.domain import QuoteTick
from tickarchive.errors import TickarchiveError
from tickarchive.ingest.journal import JournalReader
from tickarchive.loadtest.reconcile import GAP_SLACK_US
from tickarchive.loadtest.sim import Simulator
from tickarchive.settings import PathsSettings
from tickarchive.store.ilp import TABLE_NAMES
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.store.stack.questdb import QuestDBServer
from tickarchive.venues.deribit.normalize import Notification, parse_frame


@pytest.fixture
def own_questdb(tmp_path: Path) -> Iterator[tuple[QuestDBServer, QuestDBHandle]]:
    try:
        q = ephemeral.start_questdb(tmp_path / "qdb", PathsSettings().cache_dir, heap_mb=512)
    except TickarchiveError as exc:
        pytest.fail(f"QuestDB did not start: {exc}", pytrace=False)
    try:
        yield q.server, q.handle
    finally:
        q.server.down()


async def test_questdb_killed_and_restarted_mid_run_loses_nothing(
    tmp_path: Path, own_questdb: tuple[QuestDBServer, QuestDBHandle]
) -> None:
    server, qdb = own_questdb
    # a small memory bound: the outage pushes the writer into catch-up from the journal
    settings = collector_settings(connections=2, writer={"max_buffered_rows": 3000, "flush_rows": 1000})
    async with Simulator(sim_config(tmp_path, rate_per_s=1500.0, heartbeat_scale=0.1)) as sim:
        async with running(settings, sim, qdb, tmp_path / "journal") as c:
            # (every deadline here only bounds a failure)
            await wait_for(lambda: c.writer.stats.flushes > 0, 60, "a first acknowledged flush")
            assert c.writer.stats.flush_errors == 0
            await asyncio.to_thread(server.down)  # QuestDB gone (its PID stopped)
            await wait_for(lambda: c.writer.stats.flush_errors > 0, 60, "a failed flush")
            # the journal keeps growing while memory stays bounded: the writer leaves
            # memory for the journal once its buffer is full
            await wait_for(lambda: not c.writer.live, 60, "the writer to fall back to the journal")
            assert c.writer.buffered_rows <= 3000 + 1000
            outage_seq = c.journal.last_seq
            assert c.writer.acked_seq < outage_seq
            await asyncio.to_thread(server.up)
            try:
                await wait_for(lambda: c.writer.live, 120, "the writer to catch up from the journal")
            except AssertionError:
                w = c.writer
                raise AssertionError(f"{w.stats} next={w.next_seq} jnext={c.journal.next_seq} "
                                     f"buf={w.buffered_rows} acked={w.acked_seq}") from None
            await quiesce(sim, c)
            stats = c.writer.stats
            # everything journaled during the outage was read back and acknowledged
            assert c.writer.acked_seq >= outage_seq
        qdb.wait_for_wal()
        assert stats.catch_up_entries >= 1
        assert stats.caught_up_records > 0
        # sent ⊆ stored ⊆ sent ∪ dropped: a batch written to the socket whose drain was
        # still pending when the collector disconnected is logged "dropped" by the simulator
        gaps = stored_gaps(qdb)
        assert all(g["status"] == "backfilled" for g in gaps), gaps  # QuestDB down is no data gap
        quotes = set(stored_quotes(qdb))
        assert quotes <= sim.send_log.keys("quotes", status=None)
        if not gaps:
            assert sim.send_log.keys("quotes") <= quotes
        book = stored_book(qdb)
        assert set(book) <= set(sent_book(sim, status=None))
        trades = stored_trades(qdb)
        hist = history_trades(sim)
        lo = min(r[1] for r in trades.values())
        hi = max(r[1] for r in trades.values())
        assert set(trades) == {k for k, t in hist.items() if lo <= t["timestamp"] * 1000 <= hi}  # zero lost
        reg = c.metrics.registry
        errors = [reg.get_sample_value("tickarchive_questdb_flush_errors_total", {"table": t}) for t in TABLE_NAMES]
        assert sum(e or 0 for e in errors) == stats.flush_errors > 0


async def _wait_line(stream: asyncio.StreamReader, pattern: str, timeout_s: float, seen: list[str]) -> str:
    async with asyncio.timeout(timeout_s):
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"process ended before {pattern!r}; output:\n" + "".join(seen[-30:]))
            line = raw.decode(errors="replace")
            seen.append(line)
            if re.search(pattern, line):
                return line


async def _spawn_collector(sim: Simulator, qdb: QuestDBHandle, journal: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env.update(
        TICKARCHIVE_QUESTDB__HOST=qdb.host,
        TICKARCHIVE_QUESTDB__HTTP_PORT=str(qdb.http_port),
        TICKARCHIVE_QUESTDB__PG_PORT=str(qdb.pg_port),
        TICKARCHIVE_DERIBIT__RECONNECT_MIN_S="0.05",
        TICKARCHIVE_DERIBIT__RECONNECT_MAX_S="0.3",
        TICKARCHIVE_DERIBIT__SUBSCRIBE_RATE_PER_S="50",
        TICKARCHIVE_JOURNAL__FSYNC_INTERVAL_MS="50",
        TICKARCHIVE_JOURNAL__MIN_FREE_BYTES="0",
        TICKARCHIVE_WRITER__FLUSH_INTERVAL_MS="100",
    )
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tickarchive"), "collect", "--simulator", sim.ws_url,
        "--journal-dir", str(journal),
        "--connections", "2", "--metrics-port", "0",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def test_collector_sigkilled_and_restarted_loses_no_journaled_frame(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    qdb = questdb_clean
    journal = tmp_path / "journal"
    seen: list[str] = []
    async with Simulator(sim_config(tmp_path)) as sim:
        first = await _spawn_collector(sim, qdb, journal)
        assert first.stderr is not None
        await _wait_line(first.stderr, r"c1: connected", 120, seen)  # (the deadlines only bound a failure)
        await wait_for(lambda: JournalReader(journal).acked_seq >= 300, 60, "300 acknowledged records")
        first.send_signal(signal.SIGKILL)  # no flush, no checkpoint, maybe a torn record
        assert await first.wait() == -signal.SIGKILL
        killed_at = JournalReader(journal).segments()[-1].last_ts_us
        ends = {}  # connection -> min(receive time, exchange time) of its last journaled frame
        for conn, rec in JournalReader(journal).last_per_connection().items():
            if re.fullmatch(r"c\d+", conn):
                o = parse_frame(rec.frame, rec.recv_ts_us)
                ts = [e.ts_us for e in o.events] if type(o) is Notification else []
                ends[conn] = min([rec.recv_ts_us, *ts])
        acked_before = JournalReader(journal).acked_seq
        last_before = JournalReader(journal).segments()[-1].last_seq
        assert killed_at is not None
        assert last_before is not None
        # the market moves on while nobody listens: a trade happens that only the backfill can bring
        await wait_for(lambda: any(t["timestamp"] * 1000 > killed_at for t in history_trades(sim).values()), 60,
                       "a trade while the collector is down")

        second = await _spawn_collector(sim, qdb, journal)
        assert second.stderr is not None
        await _wait_line(second.stderr, r"c1: connected", 120, seen)
        await wait_for(lambda: JournalReader(journal).acked_seq > last_before + 200, 60,
                       "200 records of the second run acknowledged")
        sim.inject("maintenance", seconds=600)
        for _ in ends:  # one downtime gap, and one backfill, per connection of the first run
            await _wait_line(second.stderr, r"backfill: downtime", 60, seen)
        second.send_signal(signal.SIGTERM)
        tail = (await second.stderr.read()).decode(errors="replace")
        assert await second.wait() == 0  # a clean stop
        stopped = "".join(seen) + tail
        window = re.search(r"receive-to-fsync window p50 [0-9.]+ ms p99 [0-9.]+ ms max ([0-9.]+) ms", stopped)
        assert window is not None, stopped[-3000:]
        print(f"journal receive-to-fsync window (max, second run): {window.group(1)} ms")
    qdb.wait_for_wal()

    # every journaled frame (both runs, the killed one included) is in QuestDB
    reader = JournalReader(journal)
    assert reader.acked_seq == reader.segments()[-1].last_seq, stopped[-3000:]
    assert acked_before < reader.acked_seq
    journaled: set[tuple[str, int]] = set()
    for rec in reader.read_from(0):
        o = parse_frame(rec.frame, rec.recv_ts_us)
        if type(o) is Notification:
            journaled.update((e.instrument, e.ts_us) for e in o.events if type(e) is QuoteTick)
    quotes = set(stored_quotes(qdb))
    assert journaled
    assert journaled == quotes

    # what the kill lost on the wire is inside the downtime gaps (one per connection, from
    # where its journaled data ended); no trade is lost
    gaps = stored_gaps(qdb)
    downtime = [g for g in gaps if g["kind"] == "downtime"]
    assert sorted(g["connection"] for g in downtime) == sorted(ends)
    assert all(g["status"] == "backfilled" for g in downtime)
    assert {g["connection"]: g["start_us"] for g in downtime} == ends
    assert max(ends.values()) <= killed_at
    sent = sim.send_log.keys("quotes")
    # exchange timestamps of different instruments are not in send order within a few
    # milliseconds (each message its own millisecond): a quote lost in the socket can be
    # stamped a little before the last journaled frame, so the gap's start gets the load
    # harness's slack (loadtest.reconcile.GAP_SLACK_US)
    for inst, ts in sent - quotes:
        assert any(g["start_us"] - GAP_SLACK_US <= ts <= g["end_us"] + 2_000_000 for g in downtime), (inst, ts)
    trades = stored_trades(qdb)
    hist = history_trades(sim)
    lo = min(r[1] for r in trades.values())
    hi = max(r[1] for r in trades.values())
    assert set(trades) == {k for k, t in hist.items() if lo <= t["timestamp"] * 1000 <= hi}
    assert any(r[-1] == "backfill" for r in trades.values())


async def test_questdb_sigkilled_right_after_acknowledging_loses_nothing(
    tmp_path: Path, own_questdb: tuple[QuestDBServer, QuestDBHandle]
) -> None:
    """Finding 5 of issue #14: QuestDB killed with SIGKILL (no graceful stop) right after a
    burst of acknowledgements; it restarts on the same ports, the collector goes on. Every
    quote the simulator sent is stored (an acknowledged commit is in QuestDB's WAL, which
    survives the death of its process), and nothing is left unacknowledged."""
    server, qdb = own_questdb
    settings = collector_settings(connections=2)
    async with Simulator(sim_config(tmp_path, rate_per_s=1500.0, heartbeat_scale=0.1)) as sim:
        async with running(settings, sim, qdb, tmp_path / "journal") as c:
            # (every deadline here only bounds a failure)
            await wait_for(lambda: c.writer.stats.flushes >= 10, 60, "a burst of acknowledged flushes")
            acked = c.writer.acked_seq
            proc = server.pid_file.process()
            assert proc is not None
            proc.kill()  # SIGKILL: no shutdown hook runs
            await asyncio.to_thread(proc.wait, 60)
            await wait_for(lambda: c.writer.stats.flush_errors > 0, 60, "a failed flush")
            await asyncio.to_thread(server.up)  # the stale pid file is cleared; same ports
            await wait_for(lambda: c.writer.acked_seq > c.journal.last_seq - 1000 and c.writer.healthy, 120,
                           "acknowledgements again")
            await quiesce(sim, c)
            assert c.writer.acked_seq >= acked
        qdb.wait_for_wal()
        gaps = stored_gaps(qdb)
        assert all(g["kind"] != "disconnect" or g["status"] == "backfilled" for g in gaps)
        quotes = set(stored_quotes(qdb))
        assert sim.send_log.keys("quotes") <= quotes | _in_gaps(sim.send_log.keys("quotes"), gaps)
        assert quotes <= sim.send_log.keys("quotes", status=None)


def _in_gaps(keys: set[tuple[str, int]], gaps: list[dict[str, object]]) -> set[tuple[str, int]]:
    """The keys a reported gap covers (its instrument or '*', start .. end)."""
    out = set()
    for inst, ts in keys:
        for g in gaps:
            start, end = g["start_us"], g["end_us"]
            assert isinstance(start, int)
            if g["instrument"] in ("*", inst) and start <= ts and (end is None or ts <= end):  # type: ignore[operator]
                out.add((inst, ts))
    return out
