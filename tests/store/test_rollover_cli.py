"""``tickarchive rollover`` / ``warm-retention`` from the command line (plain PostgreSQL warm store)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.store import rollover_data as data
from tickarchive.cli.rollover import register
from tickarchive.domain import TradeTick
from tickarchive.store.errors import NotSealed, VerificationMismatch
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

D5, D6, D7 = data.DAYS


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle) -> tuple[
        typer.Typer, CliRunner]:
    monkeypatch.setenv("TICKARCHIVE_QUESTDB__HOST", questdb_clean.host)
    monkeypatch.setenv("TICKARCHIVE_QUESTDB__PG_PORT", str(questdb_clean.pg_port))
    monkeypatch.setenv("TICKARCHIVE_QUESTDB__HTTP_PORT", str(questdb_clean.http_port))
    monkeypatch.setenv("TICKARCHIVE_POSTGRES__DSN", postgres_clean.owner_dsn)
    app = typer.Typer()
    register(app)
    return app, CliRunner()


def test_dry_run_then_rollover_then_status(
    cli: tuple[typer.Typer, CliRunner], questdb_clean: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    app, runner = cli
    data.write(questdb_clean, data.all_events([D5, D6]))
    r = runner.invoke(app, ["rollover", "--dry-run", "--now", "2026-10-20T01:00:00Z", "--table", "trades"])
    assert r.exit_code == 0, r.output
    assert "(dry run) 2026-10-05: sealed" in r.output
    assert "would copy" in r.output
    assert "(dry run) QuestDB trades 2026-10-05: kept: not rolled over" in r.output
    assert postgres_clean.query("SELECT count(*) FROM trades") == [(0,)]

    r = runner.invoke(app, ["rollover", "--now", "2026-10-08T01:00:00Z", "--table", "trades", "--table", "quotes"])
    assert r.exit_code == 0, r.output
    assert "2026-10-06: sealed" in r.output
    assert "ok" in r.output
    assert postgres_clean.query("SELECT count(*) FROM trades") == [(10,)]
    r = runner.invoke(app, ["rollover", "--status"])
    assert r.exit_code == 0, r.output
    assert r.output.count("verified") == 4, r.output

    r = runner.invoke(app, ["rollover", "--now", "2026-10-20T01:00:00Z", "--table", "trades", "--table", "quotes"])
    assert r.exit_code == 0, r.output
    assert "QuestDB trades 2026-10-05: dropped (5 rows verified)" in r.output
    assert questdb_clean.count("trades") == 0

    late = data.trades_of(D5)[0]
    late_trade = TradeTick(instrument=late.instrument, ts_us=late.ts_us + 1000, recv_ts_us=late.recv_ts_us,
                           trade_id="LATE-9", trade_seq=99, price=0.05, amount=1.0, direction="buy")
    data.write(questdb_clean, [late_trade])
    r = runner.invoke(app, ["rollover", "--now", "2026-10-20T01:00:00Z", "--table", "trades", "--table", "quotes"])
    assert r.exit_code == 0, r.output
    assert "copy late rows" in r.output
    assert "late rows loaded into 2026-10: if that month is archived, re-export it" in r.output
    assert postgres_clean.query("SELECT count(*) FROM trades") == [(11,)]


def test_unsealed_day_and_mismatch_exit_non_zero(
    cli: tuple[typer.Typer, CliRunner], questdb_clean: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    app, runner = cli
    data.write(questdb_clean, data.all_events([D6]))
    r = runner.invoke(app, ["rollover", "--day", "2026-10-06", "--now", "2026-10-07T00:10:00Z"])
    assert r.exit_code == 1
    assert isinstance(r.exception, NotSealed)
    assert "grace period runs until 2026-10-07T00:30:00" in str(r.exception)
    r = runner.invoke(app, ["rollover", "--day", "2026-13-01"])
    assert r.exit_code == 1
    assert "invalid day" in str(r.exception)

    postgres_clean.query("SELECT tickarchive_ensure_partition('trades', '2026-10-06')")
    postgres_clean.query(
        "INSERT INTO trades (ts, recv_ts, instrument, trade_id, trade_seq, price, amount, direction, source) "
        "VALUES ('2026-10-06 10:00:01.5+00', '2026-10-06 10:00:02+00', %s, 'ETH-1006-111', 111, 0.0451, 2.0, "
        "'buy', 'ws')", (data.CALL,))  # the same dedup key as a hot trade, a different price
    r = runner.invoke(app, ["rollover", "--day", "2026-10-06", "--now", "2026-10-20T01:00:00Z", "--table", "trades"])
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, VerificationMismatch), r.output
    assert "MISMATCH" in r.output
    assert f"2026-10-06 trades: {data.CALL}: hot 4 rows/" in r.output
    assert "QuestDB trades 2026-10-06: kept: ledger status mismatch" in r.output
    assert questdb_clean.count("trades") == 5


def test_warm_retention_dry_run(cli: tuple[typer.Typer, CliRunner], tmp_path: Path) -> None:
    app, runner = cli
    today = dt.date(2026, 11, 24).isoformat()
    r = runner.invoke(app, ["warm-retention", "--dry-run", "--today", today, "--target", str(tmp_path / "lake")])
    assert r.exit_code == 0, r.output
    assert "warm retention on 2026-11-24 (12 months)" in r.output
