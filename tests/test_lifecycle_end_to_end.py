"""The whole lifecycle on real servers: simulator → collector → QuestDB → seal (accelerated
time) → rollover → hot drop → archive export → verify → warm drop → restore → identical rows.

The simulator stamps its messages with the wall clock, so the collector stores ticks of
today (D). Time is then accelerated (the rollover takes ``now_us``): to 01:00 the next
day, to seal D (the collector's heartbeat row at 00:05 the next day, written here as the
still-running collector would, is the evidence that the journal was shipped past D),
then past the hot retention, then a year on for the warm retention. Runs on both warm
dialects. (The same path with rows from a real capture is covered by the tests of
``tests/store``; here every row comes from the live protocol.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.ingest.conditions import until_stored
from tests.ingest.test_collector import collector_settings, quiesce, running, sim_config
from tickarchive.archive.export import export_month
from tickarchive.archive.retention import Verdict
from tickarchive.archive.targets import open_target
from tickarchive.archive.verify import verify_month
from tickarchive.loadtest.sim import Simulator
from tickarchive.months import Month
from tickarchive.ops.lifecycle import ARCHIVED_TABLES, restore_to_warm, warm_retention
from tickarchive.store.hot import HotStore
from tickarchive.store.rollover import Action, RolloverOptions, Status, checksum_warm, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import table as table_named


def _now(day: dt.date, hour: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp() * 1_000_000)


async def test_simulator_to_restore_identical_rows(
    tmp_path: Path, questdb_clean: QuestDBHandle, warm_store: WarmHandle
) -> None:
    qdb = questdb_clean
    async with (
        Simulator(sim_config(tmp_path, instruments=20, rate_per_s=800.0)) as sim,
        running(collector_settings(connections=2), sim, qdb, tmp_path / "journal") as c,
    ):
        await until_stored(c, quotes=1000, trades=5, book_changes=200, index_ticks=5, instruments=20)
        await quiesce(sim, c)
    qdb.wait_for_wal()
    d = dt.datetime.now(dt.UTC).date()
    if dt.datetime.now(dt.UTC).hour == 0 and dt.datetime.now(dt.UTC).minute < 1:
        d = qdb.query("SELECT cast(min(ts) AS date) FROM quotes")[0][0].date()  # ran across midnight
    nxt = d + dt.timedelta(days=1)
    qdb.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
              f"journal_backlog_bytes) VALUES ('{nxt.isoformat()}T00:05:00.000000Z', 'c0', true, 3, 1, 0)")
    qdb.wait_for_wal()
    month = Month.of(d)
    hot_counts = {t: qdb.count(t) for t in ("quotes", "trades", "book_changes", "instruments", "index_ticks")}
    assert min(hot_counts.values()) > 0, hot_counts

    with HotStore(qdb.pg_dsn, qdb.http_url) as hot, \
            WarmStore(warm_store.owner_dsn, warm_store.dialect, pglite=warm_store.pglite) as warm:
        # 1. the morning after: D sealed, copied and verified; nothing is old enough to drop
        unsealed = run(hot, warm, _now(nxt, 0), RolloverOptions())  # 00:00: still in the grace period
        assert [(s.day, s.sealed) for s in unsealed.seals] == [(d, False)]
        assert unsealed.tables == ()
        first = run(hot, warm, _now(nxt, 1), RolloverOptions())
        assert first.ok, first.problems
        assert [(s.day, s.sealed) for s in first.seals] == [(d, True)]
        assert first.drops == ()
        copied = {o.table: o for o in first.tables if o.action is Action.FULL}
        for t, n in hot_counts.items():
            o = copied[t]
            assert o.rows_hot == o.rows_warm == n
            assert o.checksum_hot == o.checksum_warm
        # 2. ten days later: the hot partitions go, after verification
        second = run(hot, warm, _now(d + dt.timedelta(days=10), 3), RolloverOptions())
        assert second.ok
        assert {o.action for o in second.tables} == {Action.UNCHANGED}
        assert {dr.table for dr in second.drops if dr.dropped} >= set(hot_counts)
        assert all(qdb.count(t) == 0 for t in hot_counts)
        assert {r.status for r in warm.ledger_all() if r.day == d and r.rows_hot} == {Status.DROPPED}
        present = sorted({(r.table_name, r.day) for r in warm.ledger_all() if r.rows_warm and r.day == d})
        before = {(t, d): checksum_warm(warm, table_named(t), d) for t, d in present}
        ledger = {(r.table_name, r.day): r.checksum_hot for r in warm.ledger_all()}
        assert all(before[k].hex() == ledger[k] for k in before)

        # 3. archive the month, verify it
        target = open_target(str(tmp_path / "lake"))
        archived = sorted({t for t, _ in present} & {t.name for t in ARCHIVED_TABLES})
        with WarmStore.open(warm_store.reader_dsn) as source:
            for t in archived:
                result = export_month(source, target, table_named(t), month)
                assert result.manifest.total_rows == before[(t, d)].rows
                verify_month(target, t, month)

        # 4. a year later the warm month may go: it verified
        out = warm_retention(warm, target, month.plus(13).first_day, 12)
        assert {(o.table, o.verdict) for o in out if o.month == month} == {(t, Verdict.DROP) for t in archived}
        for t in archived:
            assert warm.count_day(table_named(t), d) == 0

        # 5. restore: the very same rows come back
        warm.forget_partitions()
        for t in archived:
            r = restore_to_warm(target, warm, table_named(t), month)
            assert r.rows_inserted == r.rows_read == before[(t, d)].rows
            assert restore_to_warm(target, warm, table_named(t), month).rows_inserted == 0  # idempotent
        for (t, day), expected in before.items():
            if t in archived:
                assert checksum_warm(warm, table_named(t), day) == expected, t
