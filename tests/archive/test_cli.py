"""The ``archive`` commands end to end on a local target (replay output as the source)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from tickarchive.archive import catalog, synthetic
from tickarchive.archive.local_target import LocalTarget
from tickarchive.cli.archive import register
from tickarchive.months import Month
from tickarchive.store.stack.handles import WarmHandle

OCT = Month(2026, 10)


@pytest.fixture
def cli() -> tuple[typer.Typer, CliRunner]:
    app = typer.Typer()
    register(app)
    return app, CliRunner()


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    d = tmp_path / "replay"
    d.mkdir()
    pq.write_table(synthetic.quotes(1200, OCT, n_instruments=20), d / "quotes.parquet")
    pq.write_table(synthetic.trades(300, OCT, n_instruments=20), d / "trades.parquet")
    return d


def test_export_ls_verify_and_a_flipped_byte(
    cli: tuple[typer.Typer, CliRunner], replay_dir: Path, tmp_path: Path
) -> None:
    app, runner = cli
    lake = tmp_path / "lake"
    args = ["archive", "export", "--month", "2026-10", "--table", "quotes", "--table", "trades"]
    r = runner.invoke(app, [*args, "--from-dir", str(replay_dir), "--target", f"file://{lake}"])
    assert r.exit_code == 0, r.output
    assert "quotes 2026-10: exported, 1,200 rows in 1 files" in r.output
    assert "trades 2026-10: exported, 300 rows in 1 files" in r.output
    r = runner.invoke(app, [*args, "--from-dir", str(replay_dir), "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "quotes 2026-10: up-to-date" in r.output

    r = runner.invoke(app, ["archive", "verify", "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "quotes 2026-10: OK (1 files, 1,200 rows)" in r.output
    r = runner.invoke(app, ["archive", "ls", "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "1,200" in r.output
    assert "yes" in r.output

    part = lake / "table=trades/month=2026-10/part-0000.parquet"
    data = bytearray(part.read_bytes())
    data[200] ^= 0x04
    part.write_bytes(bytes(data))
    r = runner.invoke(app, ["archive", "verify", "--month", "2026-10", "--target", str(lake)])
    assert r.exit_code == 1
    assert "table=trades/month=2026-10/part-0000.parquet: SHA-256 mismatch" in r.output
    assert "quotes 2026-10: OK" in r.output
    # the month that failed no longer counts as verified: the warm tier must keep it
    r = runner.invoke(app, ["archive", "retention", "--target", str(lake), "--today", "2027-12-05"])
    assert r.exit_code == 0, r.output
    lines = {tuple(line.split()[:2]): line for line in r.output.splitlines() if line.strip()}
    assert lines[("quotes", "2026-10")].endswith("drop")
    assert lines[("trades", "2026-10")].endswith("keep: archive not verified")
    r = runner.invoke(app, ["archive", "retention", "--target", str(lake), "--today", "2027-10-05"])
    assert "quotes                 2026-10  keep: within retention" in r.output


def test_export_refuses_an_open_month_and_bad_input(cli: tuple[typer.Typer, CliRunner], replay_dir: Path) -> None:
    app, runner = cli
    r = runner.invoke(app, ["archive", "export", "--month", "2099-01", "--from-dir", str(replay_dir)])
    assert r.exit_code != 0
    assert "not closed yet" in str(r.exception)
    r = runner.invoke(app, ["archive", "export", "--month", "2026-13", "--from-dir", str(replay_dir)])
    assert "invalid month '2026-13'" in str(r.exception)


def test_journal_and_retention_commands(cli: tuple[typer.Typer, CliRunner], tmp_path: Path) -> None:
    app, runner = cli
    lake = tmp_path / "lake"
    seg = tmp_path / "seg-000001.log"
    seg.write_bytes(b'1700000000.1: {"jsonrpc":"2.0","method":"subscription"}\n' * 200)
    r = runner.invoke(app, ["archive", "journal", str(seg), "--day", "2026-11-03", "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "journal 2026-11-03: archived, 1 segments" in r.output
    r = runner.invoke(app, ["archive", "verify-journal", "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "journal 2026-11-03: OK" in r.output
    r = runner.invoke(app, ["archive", "retention", "--target", str(lake), "--today", "2027-12-05"])
    assert r.exit_code == 0, r.output


def test_restore_into_postgres(
    cli: tuple[typer.Typer, CliRunner], replay_dir: Path, tmp_path: Path, postgres_clean: WarmHandle
) -> None:
    app, runner = cli
    lake = tmp_path / "lake"
    r = runner.invoke(
        app, ["archive", "export", "--month", "2026-10", "--from-dir", str(replay_dir), "--target", str(lake)]
    )
    assert r.exit_code == 0, r.output
    for _ in range(2):
        r = runner.invoke(
            app, ["archive", "restore", "--month", "2026-10", "--target", str(lake), "--dsn", postgres_clean.writer_dsn]
        )
        assert r.exit_code == 0, r.output
    assert "quotes 2026-10: read 1,200 rows, inserted 0 new" in r.output
    assert postgres_clean.query("SELECT count(*) FROM quotes")[0][0] == 1200
    assert postgres_clean.query("SELECT count(*) FROM trades")[0][0] == 300
    manifest = catalog.read_month_manifest(LocalTarget(lake), "quotes", OCT)
    assert manifest is not None
    assert manifest.total_rows == 1200


def test_bench_archive_prints_figures() -> None:
    from tickarchive.cli import bench

    r = CliRunner().invoke(bench.app, ["archive", "--rows", "3000", "--table", "trades"])
    assert r.exit_code == 0, r.output
    assert "bytes/row" in r.output
    assert "3,000" in r.output


def test_journal_command_archives_sealed_acknowledged_segments_by_day(
    cli: tuple[typer.Typer, CliRunner], tmp_path: Path
) -> None:
    from tickarchive.ingest.journal import Journal, JournalReader

    app, runner = cli
    jdir = tmp_path / "journal"
    frames = [
        line.split(b": ", 1)[1]
        for line in (Path(__file__).parents[1] / "fixtures/deribit/real/cryptofeed_2021-07-22_DERIBIT.ws.1.0")
        .read_bytes()
        .splitlines()[2:40]
    ]
    day1 = Month(2026, 11).start_us + 2 * 86_400_000_000 + 86_000_000_000  # 2026-11-03 23:53:20
    journal = Journal.open(jdir, segment_bytes=4096)
    try:
        seq = 0
        for i, frame in enumerate(frames * 3):
            seq = journal.append(frame, day1 + i * 10_000_000, "c0")
        journal.sync()
        journal.commit(seq - 5)  # the last records are not acknowledged yet
    finally:
        journal.close()
    infos = JournalReader(jdir).segments()
    ready = [s for s in infos if s.sealed and s.acked]
    assert 2 <= len(ready) < len(infos)
    lake = tmp_path / "lake"
    r = runner.invoke(app, ["archive", "journal", "--journal-dir", str(jdir), "--target", str(lake)])
    assert r.exit_code == 0, r.output
    index = catalog.read_index(LocalTarget(lake))
    archived = {d.day: d.segments for d in index.journal_days}
    assert sum(archived.values()) == len(ready)
    assert set(archived) <= {"2026-11-03", "2026-11-04"}
    r = runner.invoke(app, ["archive", "journal", "--journal-dir", str(jdir), "--target", str(lake)])
    assert "up-to-date" in r.output
    r = runner.invoke(app, ["archive", "verify-journal", "--target", str(lake)])
    assert r.exit_code == 0, r.output


def test_an_empty_month_is_refused_and_an_empty_table_is_never_shown_verified(
    cli: tuple[typer.Typer, CliRunner], replay_dir: Path, tmp_path: Path
) -> None:
    app, runner = cli
    lake = tmp_path / "lake"
    empty = tmp_path / "empty-replay"
    empty.mkdir()
    # a month the source holds nothing of: refused, nothing written, no "success" recorded
    r = runner.invoke(app, ["archive", "export", "--month", "2026-11", "--from-dir", str(empty), "--target", str(lake)])
    assert r.exit_code != 0
    assert ("2026-11: the source holds no rows of quotes, trades, book_changes, index_ticks, instruments, "
            "combo_legs, gaps") in str(r.exception)
    assert "nothing to archive" in str(r.exception)
    assert not lake.exists() or not any(lake.rglob("*.json"))
    assert catalog.read_index(LocalTarget(lake)).months == ()
    # a month with quotes and trades but no other table: those are recorded as empty
    r = runner.invoke(app, ["archive", "export", "--month", "2026-10", "--from-dir", str(replay_dir), "--target",
                            str(lake)])
    assert r.exit_code == 0, r.output
    assert "gaps 2026-10: empty (no rows that month), recorded as empty" in r.output
    r = runner.invoke(app, ["archive", "verify", "--target", str(lake)])
    assert r.exit_code == 0, r.output
    assert "gaps 2026-10: empty (the month had no rows; nothing to verify)" in r.output
    assert "quotes 2026-10: OK (1 files, 1,200 rows)" in r.output
    r = runner.invoke(app, ["archive", "ls", "--target", str(lake)])
    # ls is a rich table: │ table │ month │ gen │ rows │ files │ size │ created │ verified │
    cells = {
        cells[0]: cells[-1]
        for line in r.output.splitlines() if "2026-10" in line
        for cells in [[c.strip() for c in line.strip("│ ").split("│")]]
    }
    assert cells["quotes"] == "yes"
    assert cells["trades"] == "yes"
    assert cells["gaps"] == "empty"
    assert cells["book_changes"] == "empty"
