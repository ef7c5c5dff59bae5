"""A short load run through real processes (simulator, collector, QuestDB) under two chaos
modes: forced disconnects and a SIGKILLed collector. Asserts correctness, not speed:
nothing the simulator sent is missing from QuestDB unless a gap row covers it, every
trade the simulator generated is stored (live or backfilled), nothing is stored twice
beyond the sent keys, and every mid-run disconnect has a gap row."""

from __future__ import annotations

from pathlib import Path

from tickarchive.loadtest.harness import LoadSpec, run


def test_disconnects_and_collector_kill_lose_nothing(tmp_path: Path) -> None:
    spec = LoadSpec(
        rate=1000.0,
        duration_s=15.0,
        instruments=100,
        connections=2,
        chaos=("disconnects", "collector-kill"),
        run_dir=tmp_path / "run",
        trades_per_s=10.0,
    )
    lines: list[str] = []
    r = run(spec, echo=lines.append)
    t = r.recon.by_table()
    assert r.recon.lost == 0, [(x.table, x.lost, x.lost_sample) for x in r.recon.tables]
    assert r.recon.duplicates == 0
    assert r.recon.uncovered_disconnects == ()
    assert r.collector_starts == 2
    # drops at 2, 6 and 10 s; the one at 10 s finds no connection if the restarted
    # collector (killed at 7.5 s) is not connected yet
    assert sum(1 for c in r.chaos_log if " drop " in c) >= 2
    assert any("collector SIGKILL" in c for c in r.chaos_log)
    # the run did carry data: quotes and book messages from both sides of the kill
    assert t["quotes"].sent > 5_000
    assert t["quotes"].stored >= t["quotes"].sent - t["quotes"].lost_in_gaps
    assert t["book_changes"].sent > 5_000
    assert t["trades"].sent > 50
    assert r.as_json().keys() == {
        "sent",
        "stored",
        "lost",
        "duplicates",
        "write_errors",
        "rate_target",
        "rate_achieved",
        "latency_ms",
        "collector_cpu_pct",
        "collector_rss_mb",
        "duration_s",
        "chaos",
        "quarantined",
        "quarantined_rows",
    }
    assert r.as_json()["chaos"] == ["disconnects", "collector-kill"]
    # neither mode damages a frame: nothing is set aside
    assert r.as_json()["quarantined"] == {}
