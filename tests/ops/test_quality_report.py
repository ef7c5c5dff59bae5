"""The quality report on a real QuestDB (and the warm store): planted defects are found and
counted exactly, the figures match counts made from the rows, the HTML references PNGs
that exist, and the CLI picks the tier from the rollover ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ops import quality_data as data
from tickarchive.ops.quality.model import QualityReport
from tickarchive.ops.quality.report import build_report, write_report
from tickarchive.ops.quality.source import DaySource, choose_source
from tickarchive.settings import Settings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

NOW_US = data.NEXT_DAY + 3600 * data.S  # the report is made at 01:00 the next day


@pytest.fixture(scope="module")
def loaded_questdb(questdb: QuestDBHandle) -> QuestDBHandle:
    questdb.truncate_all()
    data.load_questdb(questdb.ilp_conf)
    questdb.wait_for_rows("quotes", len(data.QUOTES))
    questdb.wait_for_rows("trades", len(data.TRADES))
    questdb.wait_for_rows("gaps", len(data.GAPS))
    return questdb


@pytest.fixture(scope="module")
def hot_report(loaded_questdb: QuestDBHandle) -> QualityReport:
    source = DaySource("hot", loaded_questdb.pg_dsn, "hot (test QuestDB)")
    return build_report(source, data.DAY, now_us=NOW_US)


def _assert_figures(report: QualityReport) -> None:
    # row counts: only the day's rows
    assert report.quote_rows == sum(1 for q in data.QUOTES if data.in_day(q.ts_us)) == 59
    assert report.trade_rows == sum(1 for t in data.TRADES if data.in_day(t.ts_us)) == 22
    # every planted defect, exactly
    assert {c.name: c.count for c in report.checks} == data.PLANTED
    crossed = report.check("crossed_quote")
    assert sorted((f.instrument, f.ts_us - data.T0) for f in crossed.examples) == [
        (data.A, 7 * data.H + 1 * data.S), (data.A, 7 * data.H + 2 * data.S), (data.A, 7 * data.H + 3 * data.S)
    ]
    assert crossed.examples[0].detail == "bid 0.07 > ask 0.06"
    dup = report.check("duplicate_trade_id").examples[0]
    assert (dup.detail, dup.ts_us) == ("trade_id ETH-8007 received before", data.T0 + 15 * data.H)
    assert report.check("trade_ts_backwards").examples[0].detail == (
        "trade ETH-9113: ts 1800000.000 ms before a trade received earlier"
    )
    assert report.check("quote_ts_backwards").examples[0].detail == "ts 1000.000 ms before a quote received earlier"
    # heatmap matrix = counts per (instrument, hour) straight from the rows
    expected = data.expected_coverage()
    cov = report.coverage
    assert cov.instruments == (data.B, data.A)  # sorted by name: ...3000-P before ...4000-C
    for i, inst in enumerate(cov.instruments):
        assert list(cov.counts[i]) == [expected.get((inst, h), 0) for h in range(24)]
    a = cov.counts[cov.instruments.index(data.A)]
    assert a[5] == 4
    assert a[7] == 4
    assert a[10] == 2
    assert a[0] == 1
    b = cov.counts[cov.instruments.index(data.B)]
    assert b[3] == 4
    assert b[11] == 2
    assert b[12:] == (0,) * 12
    assert cov.cells_with_data_pct == pytest.approx(100.0 * (24 + 12) / 48)
    # trade completeness from trade_seq
    comp = {c.instrument: c for c in report.completeness}
    assert (comp[data.A].first_seq, comp[data.A].last_seq, comp[data.A].missing) == (100, 119, 2)
    assert comp[data.A].pct == pytest.approx(90.0)
    assert (comp[data.B].trades, comp[data.B].missing, comp[data.B].pct) == (4, 0, 100.0)
    assert report.trade_completeness_pct == pytest.approx(100.0 * 21 / 23)
    # volume reconciliation against the last volume_24h of the day
    vol = {v.instrument: v for v in report.volume}
    assert (vol[data.A].traded, vol[data.A].exchange_24h, vol[data.A].status) == (10.0, 10.0, "ok")
    assert (vol[data.B].traded, vol[data.B].exchange_24h, vol[data.B].status) == (3.0, 5.0, "mismatch")
    assert vol[data.B].diff_pct == pytest.approx(-40.0)
    # gaps overlapping the day, clipped to it; the open one runs to the day's end
    seconds: dict[str, float] = {}
    for s in report.gaps:
        seconds[s.gap.kind] = seconds.get(s.gap.kind, 0.0) + s.seconds
    assert seconds == data.EXPECTED_GAP_SECONDS
    assert [s.open for s in report.gaps] == [False, False, False, True]


def test_report_figures_from_questdb(hot_report: QualityReport) -> None:
    assert hot_report.source == "hot (test QuestDB)"
    _assert_figures(hot_report)


def test_flagged_rows_are_not_dropped(loaded_questdb: QuestDBHandle, hot_report: QualityReport) -> None:
    # the report read every row and left the store as it was
    assert loaded_questdb.count("quotes") == len(data.QUOTES)
    assert loaded_questdb.count("trades") == len(data.TRADES)
    # flagged rows are part of the coverage counts (hour 7 of A holds the 3 crossed quotes)
    a = hot_report.coverage.counts[hot_report.coverage.instruments.index(data.A)]
    assert a[7] == 1 + 3


def test_html_lists_the_figures_and_references_existing_pngs(hot_report: QualityReport, tmp_path: Path) -> None:
    files = write_report(hot_report, tmp_path)
    assert files.directory == tmp_path / "2026-11-20"
    html = files.html.read_text()
    counts = {m[0]: int(m[1]) for m in re.findall(r'<h3 id="check-\w+" data-check="(\w+)" data-count="(\d+)"', html)}
    assert counts == data.PLANTED
    # the rows each check lists
    listed = re.findall(r'<tr class="flag" data-check="(\w+)">', html)
    assert {name: listed.count(name) for name in set(listed)} == data.PLANTED
    assert re.search(r'data-instrument="ETH-27DEC26-4000-C" data-pct="90.0000" data-missing="2"', html)
    assert 'data-volume="ETH-27DEC26-3000-P" data-status="mismatch"' in html
    assert 'data-figure="trade_completeness_pct">91.304 %' in html
    assert 'data-gap-kind="stale" data-seconds="3660.000"' in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images == ["coverage.png", "gaps.png", "completeness.png", "volume.png"]
    for name in images:
        png = files.directory / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000
    # self-contained: no scripts, no external stylesheets or images
    assert "<script" not in html
    assert "<link" not in html
    assert "http" not in html
    figures = json.loads(files.json.read_text())
    assert figures["checks"] == data.PLANTED
    assert figures["coverage"]["counts"] == [list(row) for row in hot_report.coverage.counts]


def test_empty_day_renders(loaded_questdb: QuestDBHandle, tmp_path: Path) -> None:
    import datetime as dt

    source = DaySource("hot", loaded_questdb.pg_dsn, "hot")
    report = build_report(source, dt.date(2026, 11, 22), now_us=NOW_US)
    assert (report.quote_rows, report.trade_rows, report.gaps, report.flagged_rows) == (0, 0, (), 0)
    assert report.trade_completeness_pct is None
    files = write_report(report, tmp_path)
    assert all(p.is_file() for p in files.pngs)
    assert 'data-figure="trade_completeness_pct">–' in files.html.read_text()


def _settings(questdb: QuestDBHandle, warm: WarmHandle) -> Settings:
    return Settings(questdb=questdb.settings(), postgres=warm.settings())


def test_the_ledger_decides_the_tier(loaded_questdb: QuestDBHandle, postgres_clean: WarmHandle) -> None:
    with postgres_clean.connect(postgres_clean.writer_dsn) as conn:
        data.load_warm(conn, partitioned=True)
    settings = _settings(loaded_questdb, postgres_clean)
    assert choose_source(settings, data.DAY, "auto").tier == "hot"  # no ledger rows yet
    postgres_clean.query(
        "INSERT INTO rollover_ledger (day, table_name, rows_hot, rows_warm, status) VALUES "
        "(%s, 'quotes', 59, 59, 'verified'), (%s, 'trades', 22, 22, 'loaded')",
        (data.DAY, data.DAY),
    )
    assert choose_source(settings, data.DAY, "auto").tier == "hot"  # trades not verified yet
    postgres_clean.query("UPDATE rollover_ledger SET status = 'verified' WHERE table_name = 'trades'")
    warm = choose_source(settings, data.DAY, "auto")
    assert warm.tier == "warm"
    report = build_report(warm, data.DAY, now_us=NOW_US)
    assert report.source.startswith("warm (127.0.0.1:")
    _assert_figures(report)


def test_cli_writes_the_report(
    loaded_questdb: QuestDBHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickarchive.cli import app

    for key, value in (
        ("HOST", loaded_questdb.host), ("PG_PORT", loaded_questdb.pg_port),
        ("USER", loaded_questdb.user), ("PASSWORD", loaded_questdb.password),
    ):
        monkeypatch.setenv(f"TICKARCHIVE_QUESTDB__{key}", str(value))
    result = CliRunner().invoke(
        app, ["report", "quality", "--day", "2026-11-20", "--out", str(tmp_path), "--source", "hot"]
    )
    assert result.exit_code == 0, result.output
    assert "59 quotes, 22 trades, 2 instruments, coverage 75.00 %, trade completeness 91.304 %, 4 gaps" in result.output
    assert "crossed_quote 3" in result.output
    assert "duplicate_trade_id 1" in result.output
    assert (tmp_path / "2026-11-20" / "index.html").is_file()


def test_cli_rejects_a_bad_day(tmp_path: Path) -> None:
    from tickarchive.cli import app

    result = CliRunner().invoke(app, ["report", "quality", "--day", "2026-13-01", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "expected YYYY-MM-DD, today or yesterday" in str(result.exception)
