"""The cost model of ``tickarchive bench cost`` (docs/cost-model.md): the projection's
arithmetic, the document written from a result, and the QuestDB size measurement."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tickarchive.bench import cost_doc
from tickarchive.bench import cost_model as cm
from tickarchive.bench.cost import CostResult, CostSpec, TierRows, questdb_partition_bytes

MEASURED = cm.Measured(
    parquet_bytes_per_row={"quotes": 30.0, "book_changes": 8.0, "trades": 20.0, "index_ticks": 10.0},
    journal_archive_bytes_per_frame=10.0,
    journal_local_bytes_per_frame=560.0,
    timescaledb_bytes_per_row={"quotes": 40.0, "book_changes": 20.0, "trades": 100.0, "index_ticks": 50.0},
    questdb_bytes_per_row={"quotes": 228.0, "book_changes": 40.0, "trades": 150.0, "index_ticks": 30.0},
)


def test_the_mid_scenario_is_the_assumed_volumes_times_the_measured_bytes() -> None:
    a = cm.ASSUMPTIONS
    p = cm.project(a, a.scenario("mid"), MEASURED)
    quotes = 1000 * 1.0 * 86_400
    book_rows = quotes * 0.52 * 1.14
    frames = quotes + quotes * 0.52 + 86_400
    parquet = quotes * 30 + book_rows * 8 + 20_000 * 20 + 86_400 * 10
    assert p.parquet_bytes_per_day == pytest.approx(parquet)
    assert p.journal_archive_bytes_per_day == pytest.approx(frames * 10)
    stored_tb = (parquet + frames * 10) * 365.25 * 5 / 1e12
    assert p.cold_tb_by_year[-1] == pytest.approx(stored_tb)
    assert p.usd_per_month_by_year[-1] == pytest.approx(55 + 6 * stored_tb)
    assert cm.five_year_usd_per_month(a, MEASURED)["mid"] == round(55 + 6 * stored_tb, 2)
    assert p.disk_tb["hot"] == pytest.approx(
        (quotes * 228 + book_rows * 40 + 20_000 * 150 + 86_400 * 30) * 7 / 1e12
    )
    assert p.disk_tb["journal"] == pytest.approx(frames * 560 * 4 / 1e12)


def test_the_bill_grows_with_each_year_and_with_activity() -> None:
    a = cm.ASSUMPTIONS
    usd = cm.five_year_usd_per_month(a, MEASURED)
    assert usd["low"] < usd["mid"] < usd["high"]
    p = cm.project(a, a.scenario("low"), MEASURED)
    steps = [b - c for b, c in zip(p.cold_tb_by_year[1:], p.cold_tb_by_year, strict=False)]
    assert steps == pytest.approx([p.cold_tb_by_year[0]] * 4)
    cheaper = dataclasses.replace(a, b2_usd_per_tb_month=3.0)
    assert cm.five_year_usd_per_month(cheaper, MEASURED)["mid"] < usd["mid"]


def test_the_document_shows_the_figures_of_the_model() -> None:
    spec = CostSpec(instruments=1000, hours=0.25, warm_instruments=100)
    r = CostResult(spec, data="the simulator (test)", frames=1000)
    for t, b in MEASURED.parquet_bytes_per_row.items():
        r.rows[t] = 100
        r.parquet[t] = TierRows(100, int(b * 100))
        r.questdb[t] = TierRows(100, int(MEASURED.questdb_bytes_per_row[t] * 100))
        r.timescaledb_before[t] = TierRows(10, 2000)
        r.timescaledb_after[t] = TierRows(10, int(MEASURED.timescaledb_bytes_per_row[t] * 10))
    r.journal_archive_bytes, r.journal_local_bytes = 10_000, 560_000
    r.replay_frames, r.replay_cpu_s, r.replay_startup_cpu_s = 1000, 0.5, 0.25
    doc = cost_doc.render(r)
    usd = cm.five_year_usd_per_month(cm.ASSUMPTIONS, r.measured())
    assert f"${usd['mid']:,.0f}/month in year 5" in doc
    assert "0.25 simulated hour(s)" in doc
    assert "100 of the 1000 instruments" in doc
    assert r.as_json()["five_year_usd_per_month"] == usd
    assert r.compression_ratio()["quotes"] == 5.0
    assert "mid $" in cost_doc.summary(r)
    # replay: end to end 2,000 frames/s; beyond the 0.25 CPU-s start-up 4,000
    assert r.as_json()["replay_frames_per_s"] == 2000
    assert r.as_json()["replay_frames_per_s_beyond_startup"] == 4000
    assert "**4,000 frames/s per core beyond start-up**" in doc


def test_questdb_size_counts_the_partitions_only(tmp_path: Path) -> None:
    table = tmp_path / "quotes~7"
    (table / "2026-12-06").mkdir(parents=True)
    (table / "2026-12-06" / "ts.d").write_bytes(b"x" * 4096)
    (table / "2026-12-06T120346-702001.572").mkdir()
    (table / "2026-12-06T120346-702001.572" / "ts.d").write_bytes(b"x" * 8192)
    (table / "wal1" / "0").mkdir(parents=True)
    (table / "wal1" / "0" / "ts.d").write_bytes(b"x" * 100_000)
    (table / "_meta").write_bytes(b"x" * 1000)
    (tmp_path / "quotes~7.lock").write_bytes(b"")
    (tmp_path / "quotes_1m~9" / "2026-12-06").mkdir(parents=True)
    (tmp_path / "quotes_1m~9" / "2026-12-06" / "ts.d").write_bytes(b"x" * 777)
    assert questdb_partition_bytes(tmp_path, "quotes") == 4096 + 8192
