"""Rollover crash recovery, late data, hot-partition drops and dry runs, on both warm dialects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store import rollover_data as data
from tickarchive.archive.export import export_month
from tickarchive.archive.targets import open_target
from tickarchive.domain import TradeSource, TradeTick
from tickarchive.months import Month
from tickarchive.store.hot import HotStore
from tickarchive.store.rollover import Action, RolloverOptions, Status, Step, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import GAPS, QUOTES, TRADES, Table

D5, D6, D7 = data.DAYS
TABLES = (GAPS, TRADES, QUOTES)
EARLY = data.now_us(dt.date(2026, 10, 7), 2, 0)  # D6 sealed, within hot retention
LATE = data.now_us(dt.date(2026, 10, 20), 2, 0)  # D5, D6 older than 7 days


class Crash(RuntimeError):
    pass


@pytest.fixture
def hot(questdb_clean: QuestDBHandle) -> Iterator[HotStore]:
    with HotStore(questdb_clean.pg_dsn, questdb_clean.http_url) as h:
        yield h


@pytest.fixture
def warm(warm_store: WarmHandle) -> Iterator[WarmStore]:
    with WarmStore(warm_store.owner_dsn, warm_store.dialect, pglite=warm_store.pglite) as w:
        yield w


def _crash_at(step: Step, table: Table) -> object:
    def hook(s: Step, t: Table, day: dt.date) -> None:
        if s is step and t is table:
            raise Crash(f"injected crash before {s} of {t.name} {day}")

    return hook


def _late_trade(day: dt.date, seq: int = 150) -> TradeTick:
    t = data.us(day, 10, 0, 45.0)
    return TradeTick(instrument=data.CALL, ts_us=t, recv_ts_us=t + 3_600_000_000 * 30, trade_id=f"LATE-{seq}",
                     trade_seq=seq, price=0.0500, amount=4.0, direction="buy", source=TradeSource.BACKFILL)


def _state(warm_store: WarmHandle) -> tuple[Any, ...]:
    return (
        warm_store.query("SELECT count(*), count(DISTINCT (instrument, ts, trade_id)) FROM trades")[0],
        warm_store.query("SELECT count(*) FROM quotes")[0][0],
        warm_store.query("SELECT table_name, rows_hot, rows_warm, checksum_hot = checksum_warm, status "
                         "FROM rollover_ledger ORDER BY table_name"),
        warm_store.query("SELECT open, close, trade_count FROM trades_1m WHERE instrument = %s ORDER BY bucket",
                         (data.CALL,)),
        warm_store.query("SELECT table_name, instrument, rows FROM coverage_daily ORDER BY 1, 2"),
    )


@pytest.mark.parametrize("step", [s for s in Step if s is not Step.DROP])
def test_crash_before_each_step_then_rerun_completes(
    step: Step, questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle
) -> None:
    data.write(questdb_clean, data.all_events([D6]))
    with pytest.raises(Crash):
        run(hot, warm, EARLY, RolloverOptions(tables=TABLES), hook=_crash_at(step, TRADES))  # type: ignore[arg-type]
    ledger = warm.ledger(D6, "trades")
    assert ledger is None or ledger.status != Status.VERIFIED
    report = run(hot, warm, EARLY, RolloverOptions(tables=TABLES))
    assert report.ok, report.problems
    (n, distinct), quotes, ledger_rows, ohlc, coverage = _state(warm_store)
    assert (n, distinct, quotes) == (5, 5, 60)
    assert ledger_rows == [("gaps", 1, 1, True, "verified"), ("quotes", 60, 60, True, "verified"),
                           ("trades", 5, 5, True, "verified")]
    assert ohlc == [(0.045, 0.046, 4)]
    assert ("trades", data.CALL, 4) in coverage
    # and once more: nothing changes
    again = run(hot, warm, EARLY, RolloverOptions(tables=TABLES))
    assert {o.action for o in again.tables} == {Action.UNCHANGED}


def test_crash_before_drop_and_after_drop_before_ledger(
    questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle
) -> None:
    data.write(questdb_clean, data.all_events([D5, D6]))
    with pytest.raises(Crash):
        run(hot, warm, LATE, RolloverOptions(tables=TABLES), hook=_crash_at(Step.DROP, TRADES))  # type: ignore[arg-type]
    assert questdb_clean.count("trades") == 10  # nothing dropped before the crash
    # a crash between DROP PARTITION and the ledger update: QuestDB lost D5 trades, ledger says verified
    hot.drop_partition(TRADES, D5)
    assert warm.ledger(D5, "trades").status == Status.VERIFIED  # type: ignore[union-attr]
    report = run(hot, warm, LATE, RolloverOptions(tables=TABLES))
    assert report.ok, report.problems
    assert {(o.day, o.table): o.action for o in report.tables}[(D5, "trades")] is Action.MARK_DROPPED
    assert questdb_clean.count("trades") == 0
    assert questdb_clean.count("quotes") == 0
    assert {r.status for r in warm.ledger_all()} == {Status.DROPPED}
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 10


def test_hot_partitions_dropped_only_after_verification_and_retention(
    questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle
) -> None:
    data.write(questdb_clean, data.all_events([D5, D6, D7]))
    early = run(hot, warm, data.now_us(dt.date(2026, 10, 8), 1, 0), RolloverOptions(tables=TABLES))
    assert early.ok
    assert early.drops == ()  # all verified, none older than 7 days
    # D6 trades in the warm store get a row QuestDB never had: the next verification must fail
    warm_store.query(
        "INSERT INTO trades (ts, recv_ts, instrument, trade_id, trade_seq, price, amount, direction, source) "
        "VALUES ('2026-10-06 15:00:00+00', '2026-10-06 15:00:01+00', %s, 'BOGUS', 999, 1.0, 1.0, 'buy', 'ws')",
        (data.CALL,))
    warm_store.query("UPDATE rollover_ledger SET status = 'loading' WHERE day = %s AND table_name = 'trades'", (D6,))
    # one day later than the retention allows for D5 and D6, but not D7
    report = run(hot, warm, data.now_us(dt.date(2026, 10, 14), 3, 0), RolloverOptions(tables=TABLES))
    assert report.problems == ["2026-10-06 trades: row counts differ: hot 5, warm 6",
                               f"2026-10-06 trades: {data.CALL}: hot 4 rows/" + report.problems[1].split("/")[1]
                               .split(",")[0] + ", warm 5 rows/" + report.problems[1].split("/")[-1]]
    dropped = sorted((d.day, d.table) for d in report.drops if d.dropped)
    assert dropped == [(D5, "gaps"), (D5, "quotes"), (D5, "trades"), (D6, "gaps"), (D6, "quotes")]
    kept = {(d.day, d.table): d.reason for d in report.drops if not d.dropped}
    assert kept == {(D6, "trades"): "kept: ledger status mismatch"}
    assert hot.count(TRADES, D6) == 5
    assert hot.count(TRADES, D7) == 5
    assert hot.count(TRADES, D5) == 0
    assert warm.ledger(D6, "trades").status == Status.MISMATCH  # type: ignore[union-attr]


def test_late_trade_before_and_after_the_hot_drop_then_archive_reexport(
    questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle, tmp_path: Path
) -> None:
    data.write(questdb_clean, data.all_events([D6]))
    assert run(hot, warm, EARLY, RolloverOptions(tables=TABLES)).ok
    # 1. late trade while D6 is still hot: the hot count differs from the ledger → D6 trades re-copied
    data.write(questdb_clean, [_late_trade(D6, 150)])
    r1 = run(hot, warm, EARLY, RolloverOptions(tables=TABLES))
    acts = {o.table: (o.action, o.inserted) for o in r1.tables}
    assert acts == {"gaps": (Action.UNCHANGED, 0), "trades": (Action.FULL, 1), "quotes": (Action.UNCHANGED, 0)}
    assert warm.ledger(D6, "trades").rows_warm == 6  # type: ignore[union-attr]
    assert warm_store.query("SELECT close, trade_count FROM trades_1m WHERE instrument = %s", (data.CALL,)) == [
        (0.05, 5)]
    # 2. D6 leaves the hot store; archive its month
    r2 = run(hot, warm, LATE, RolloverOptions(tables=TABLES))
    assert r2.ok
    assert {(d.table, d.dropped) for d in r2.drops} == {("gaps", True), ("trades", True), ("quotes", True)}
    target = open_target(str(tmp_path / "lake"))
    source = WarmStore.open(warm_store.reader_dsn)
    first = export_month(source, target, TRADES, Month(2026, 10))
    assert (first.manifest.total_rows, first.manifest.generation) == (6, 0)
    # 3. a trade backfilled for D6 after the drop: QuestDB holds D6 again (one row)
    data.write(questdb_clean, [_late_trade(D6, 151)])
    assert hot.count(TRADES, D6) == 1
    r3 = run(hot, warm, LATE, RolloverOptions(tables=TABLES))
    assert r3.ok, r3.problems
    o = {x.table: x for x in r3.tables}["trades"]
    assert (o.action, o.rows_hot, o.inserted, o.rows_warm) == (Action.DELTA, 1, 1, 7)
    assert [(d.table, d.dropped) for d in r3.drops] == [("trades", True)]
    assert hot.count(TRADES, D6) == 0
    ledger = warm.ledger(D6, "trades")
    assert ledger is not None
    assert (ledger.status, ledger.rows_warm, ledger.rows_hot) == (Status.DROPPED, 7, 1)
    assert warm_store.query("SELECT trade_count, close FROM trades_1m WHERE instrument = %s", (data.CALL,)) == [
        (6, 0.05)]
    assert warm_store.query("SELECT rows FROM coverage_daily WHERE day = %s AND table_name = 'trades' "
                            "AND instrument = %s", (D6, data.CALL)) == [(6,)]
    # 4. the archived month is stale (manifest 6 rows, warm 7): the next export writes generation 1
    second = export_month(source, target, TRADES, Month(2026, 10))
    assert (second.status, second.manifest.total_rows, second.manifest.generation) == ("exported", 7, 1)
    # 5. the same late row delivered again: nothing changes
    data.write(questdb_clean, [_late_trade(D6, 151)])
    r4 = run(hot, warm, LATE, RolloverOptions(tables=TABLES))
    o4 = {x.table: x for x in r4.tables}["trades"]
    assert r4.ok
    assert (o4.action, o4.inserted, o4.rows_warm) == (Action.DELTA, 0, 7)
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 7
    source.close()


def test_dry_run_changes_nothing(
    questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle
) -> None:
    data.write(questdb_clean, data.all_events([D5, D6]))
    report = run(hot, warm, LATE, RolloverOptions(tables=TABLES, dry_run=True))
    assert {(o.day, o.table, o.action, o.rows_hot) for o in report.tables} == {
        (D5, "gaps", Action.FULL, 1), (D5, "trades", Action.FULL, 5), (D5, "quotes", Action.FULL, 60),
        (D6, "gaps", Action.FULL, 1), (D6, "trades", Action.FULL, 5), (D6, "quotes", Action.FULL, 60)}
    assert all(not d.dropped and d.reason == "kept: not rolled over" for d in report.drops)
    assert warm.ledger_all() == []
    assert warm_store.query("SELECT count(*) FROM trades")[0][0] == 0
    assert questdb_clean.count("trades") == 10
    run(hot, warm, LATE, RolloverOptions(tables=TABLES, drop=False))
    dry = run(hot, warm, LATE, RolloverOptions(tables=TABLES, dry_run=True))
    assert {d.reason for d in dry.drops} == {"would drop (5 rows verified)", "would drop (60 rows verified)",
                                             "would drop (1 rows verified)"}
    assert questdb_clean.count("trades") == 10


def test_crash_in_the_middle_of_a_load_then_rerun(
    questdb_clean: QuestDBHandle, hot: HotStore, warm: WarmStore, warm_store: WarmHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of 16 rows; the process dies after the first batches were committed. The
    rerun sees a non-empty warm day, takes the staged ON CONFLICT path and completes."""
    from tickarchive.store import hot as hot_export

    monkeypatch.setattr(hot_export, "BATCH_ROWS", 16)
    data.write(questdb_clean, data.all_events([D6]))
    real_load = WarmStore.load
    calls = {"n": 0}

    def dying_load(self: WarmStore, table: Table, batch: Any, day: dt.date, *, fresh: bool = False) -> int:
        if table is QUOTES and calls["n"] == 2:
            raise Crash("killed during the load")
        calls["n"] += table is QUOTES
        return real_load(self, table, batch, day, fresh=fresh)

    monkeypatch.setattr(WarmStore, "load", dying_load)
    with pytest.raises(Crash):
        run(hot, warm, EARLY, RolloverOptions(tables=TABLES))
    assert warm_store.query("SELECT count(*) FROM quotes") == [(32,)]
    monkeypatch.setattr(WarmStore, "load", real_load)
    report = run(hot, warm, EARLY, RolloverOptions(tables=TABLES))
    assert report.ok, report.problems
    q = {o.table: o for o in report.tables}["quotes"]
    assert (q.action, q.rows_hot, q.inserted, q.rows_warm) == (Action.FULL, 60, 28, 60)
    assert warm_store.query("SELECT count(*), count(DISTINCT (instrument, ts)) FROM quotes") == [(60, 60)]
