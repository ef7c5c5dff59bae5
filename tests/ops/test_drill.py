"""The recovery drill on real servers, against an original built from the live protocol.

The original: the in-process simulator feeds the collector (journal in ``tmp``, small
segments) into the session QuestDB; day D is sealed (accelerated time, as in
``tests/test_lifecycle_end_to_end.py``), rolled over into the session PostgreSQL, its month
exported to a Parquet archive, and all journal segments but the newest archived as day D
(the newest stays local only: "the days after the last archived one"). The drill then
rebuilds a fresh QuestDB + PostgreSQL from that and must find every checksum identical;
then one damaged archived file and rows deleted from the original must each fail it,
named.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from tests.ingest.conditions import until_stored
from tests.ingest.test_collector import collector_settings, quiesce, running, sim_config
from tickarchive.archive.export import export_month
from tickarchive.archive.journal import archive_journal_day
from tickarchive.archive.targets import open_target
from tickarchive.ingest.journal import JournalReader
from tickarchive.loadtest.sim import Simulator
from tickarchive.months import Month
from tickarchive.ops.drill import DrillOptions, run_drill
from tickarchive.ops.drill_steps import (
    ORIGINAL_HOT,
    ORIGINAL_WARM,
    REBUILT_HOT,
    REBUILT_WARM,
    compare_day,
    fresh_stack,
)
from tickarchive.ops.lifecycle import ARCHIVED_TABLES
from tickarchive.progress import NO_PROGRESS
from tickarchive.settings import JournalSettings, PathsSettings, PostgresSettings, Settings
from tickarchive.store.hot import HotStore
from tickarchive.store.rollover import RolloverOptions, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import MARKET_TABLES


def _now(day: dt.date, hour: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp() * 1_000_000)


def _original_settings(qdb: QuestDBHandle, warm: WarmHandle) -> Settings:
    return Settings(questdb=qdb.settings(), postgres=PostgresSettings(dsn=warm.owner_dsn))


async def _build_original(tmp_path: Path, qdb: QuestDBHandle, warm: WarmHandle) -> tuple[dt.date, Path, Path]:
    """(day D, archive dir, local journal dir)."""
    journal = tmp_path / "journal"
    settings = collector_settings(connections=2)
    settings = settings.model_copy(
        update={"journal": JournalSettings(fsync_interval_ms=50, min_free_bytes=0, segment_bytes=256 * 1024)}
    )
    async with (
        Simulator(sim_config(tmp_path, instruments=12, rate_per_s=600.0)) as sim,
        running(settings, sim, qdb, journal) as c,
    ):
        await until_stored(c, quotes=600, trades=5, book_changes=100, index_ticks=3, instruments=12)
        await quiesce(sim, c)
    qdb.wait_for_wal()
    d = qdb.query("SELECT cast(min(ts) AS date) FROM quotes")[0][0].date()
    nxt = d + dt.timedelta(days=1)
    qdb.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
              f"journal_backlog_bytes) VALUES ('{nxt.isoformat()}T00:05:00.000000Z', 'c0', true, 3, 1, 0)")
    qdb.wait_for_wal()
    with HotStore(qdb.pg_dsn, qdb.http_url) as hot, WarmStore(warm.owner_dsn, warm.dialect) as w:
        report = run(hot, w, _now(nxt, 1), RolloverOptions())
        assert report.ok, report.problems
    lake = tmp_path / "lake"
    target = open_target(str(lake))
    with WarmStore.open(warm.reader_dsn) as source:
        for t in ARCHIVED_TABLES:
            if source.count_rows(t, Month.of(d)):
                export_month(source, target, t, Month.of(d))
    segments = [s.path for s in JournalReader(journal).segments() if s.records]
    assert len(segments) >= 3, segments
    archive_journal_day(target, d, segments[:-1])
    return d, lake, journal


def test_compare_day_names_the_instrument() -> None:
    from tickarchive.store.checksum import Checksum, GroupSum

    a = Checksum({"ETH-1": GroupSum(3, 0xAB), "ETH-2": GroupSum(1, 0x01)})
    b = Checksum({"ETH-1": GroupSum(2, 0xAA), "ETH-2": GroupSum(1, 0x01)})
    day = dt.date(2026, 11, 23)
    ok = compare_day("quotes", day, {ORIGINAL_HOT: a, ORIGINAL_WARM: a}, {REBUILT_WARM: a, REBUILT_HOT: a})
    assert ok.ok
    assert ok.rows == 4
    bad = compare_day("quotes", day, {ORIGINAL_HOT: a}, {REBUILT_HOT: b})
    assert bad.problems == (
        "quotes 2026-11-23 ETH-1: original hot 3 rows/00000000000000ab, rebuilt hot (journal) 2 rows/00000000000000aa",
    )
    lost = compare_day("quotes", day, {ORIGINAL_WARM: a}, {})
    assert not lost.ok
    assert "not rebuilt" in lost.problems[0]
    only = compare_day("quotes", day, {}, {REBUILT_WARM: a})
    assert only.ok
    assert only.rebuild_only


async def test_drill_rebuilds_identical_then_names_damage(
    tmp_path: Path, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    d, lake, journal = await _build_original(tmp_path, questdb_clean, postgres_clean)
    settings = _original_settings(questdb_clean, postgres_clean)
    until = d + dt.timedelta(days=1)
    options = DrillOptions(archive=str(lake), journal_dir=journal, since=d, until=until)
    workdir = Path(tempfile.mkdtemp(prefix="tickarchive-test-drill-"))
    os.chmod(workdir, 0o755)  # PostgreSQL runs as its own user when the tests run as root
    try:
        with fresh_stack(workdir / "stack", PathsSettings().cache_dir) as fresh:
            # 1. an honest rebuild: every tier of every (table, day) identical
            report = await asyncio.to_thread(run_drill, settings, options, NO_PROGRESS, fresh)
            print({s.name: round(s.seconds, 2) for s in report.steps}, round(report.total_s, 2))  # shown with -s
            assert report.ok, report.mismatches
            assert [s.name for s in report.steps] == [
                "verify archive", "start fresh stack", "restore archive", "restore journal", "replay journal",
                "compare checksums",
            ]
            by_table = {c.table: c for c in report.checks}
            # every market table that holds rows (ETH options only here: no combo, no combo_legs)
            assert set(by_table) == {t.name for t in MARKET_TABLES} - {"combo_legs"}
            assert {c.day for c in report.checks} == {d}
            for t in ("quotes", "trades", "book_changes", "index_ticks"):
                assert set(by_table[t].checksums) == {ORIGINAL_HOT, ORIGINAL_WARM, REBUILT_WARM, REBUILT_HOT}, t
                assert by_table[t].rows == questdb_clean.count(t) > 0
            restore_journal = next(s for s in report.steps if s.name == "restore journal")
            assert restore_journal.detail.endswith(", 1 local segments")  # the newest segment was not archived

            # 2. rows lost from the original warm store: the table, day and instrument are named
            instrument = questdb_clean.query("SELECT instrument FROM trades ORDER BY ts LIMIT 1")[0][0]
            n = postgres_clean.query("SELECT count(*) FROM trades WHERE instrument = %s", (instrument,))[0][0]
            assert n > 0
            postgres_clean.query("DELETE FROM trades WHERE instrument = %s", (instrument,))
            lost = await asyncio.to_thread(run_drill, settings, options, NO_PROGRESS, fresh)
            assert [c.table for c in lost.checks if not c.ok] == ["trades"]
            trades_ok = next(c for c in report.checks if c.table == "trades")
            sum_hex = trades_ok.checksums[ORIGINAL_HOT].groups[instrument].hex()
            assert lost.mismatches == [
                f"trades {d} {instrument}: original hot {n} rows/{sum_hex}, original warm 0 rows/0000000000000000"
            ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    # 3. a flipped byte in an archived Parquet file: the CLI names it and exits 1, before
    # any server starts
    damaged = tmp_path / "lake-damaged"
    shutil.copytree(lake, damaged)
    victim = sorted(damaged.glob("table=quotes/**/*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    from tickarchive.cli import app

    result = await asyncio.to_thread(
        CliRunner().invoke, app,
        ["drill", "--archive", str(damaged), "--journal-dir", str(journal), "--since", d.isoformat(),
         "--until", until.isoformat()],
        env={"TICKARCHIVE_QUESTDB__HTTP_PORT": str(questdb_clean.http_port),
             "TICKARCHIVE_QUESTDB__PG_PORT": str(questdb_clean.pg_port),
             "TICKARCHIVE_QUESTDB__HEALTH_PORT": str(questdb_clean.health_port),
             "TICKARCHIVE_POSTGRES__DSN": postgres_clean.owner_dsn},
    )
    assert result.exit_code == 1, result.output
    rel = victim.relative_to(damaged).as_posix()
    print(result.output)
    assert "drill FAILED: " in result.output
    assert f"{rel}: SHA-256 mismatch" in result.output
    assert "verify archive" in result.output
    assert "start fresh stack" not in result.output
