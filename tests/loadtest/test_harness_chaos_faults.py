"""The fault campaign's data faults through real processes (simulator, collector, chaos
proxy, QuestDB): ``poison`` frames whose values no store accepts and a proxy that answers
400 and 503 to QuestDB writes and refuses a few rows for good. Nothing sent is lost: each
row is stored, or in a reported gap, or in the collector's quarantine, which lists every
item it set aside (and the metric counts them)."""

from __future__ import annotations

from pathlib import Path

from tickarchive.loadtest.chaos_proxy import POISONED_ROWS
from tickarchive.loadtest.harness import LoadSpec, run


def test_poison_and_refused_writes_are_quarantined_not_lost(tmp_path: Path) -> None:
    spec = LoadSpec(
        rate=800.0,
        duration_s=12.0,
        instruments=60,
        connections=2,
        chaos=("poison", "questdb-reject"),
        run_dir=tmp_path / "run",
        trades_per_s=10.0,
    )
    lines: list[str] = []
    r = run(spec, echo=lines.append)
    t = r.recon.by_table()
    assert r.recon.lost == 0, [(x.table, x.lost, x.lost_sample) for x in r.recon.tables]
    assert r.recon.duplicates == 0
    # one poison injection (at 3 s) of 4 frames: a negative timestamp (the encoder cannot
    # write it), a timestamp past year 9999 (QuestDB refuses it), NaN strings (the parser
    # refuses it); the 10 MiB field is a value QuestDB stores
    injections = sum(1 for c in r.chaos_log if " poison x4 " in c)
    assert injections == 1
    assert r.quarantined["unencodable:quotes"] == injections
    assert r.quarantined["malformed:invalid_data:ticker"] == injections
    # rejected: the poison rows past year 9999, and the proxy's rows refused for good
    # (one item per batch that held them: at least one)
    assert r.quarantined["rejected:quotes"] >= injections + 1
    assert t["quotes"].quarantined == 3 * injections + POISONED_ROWS
    assert r.quarantine_unresolved == []
    # counted as well as listed (the collector was never killed, so nothing went unscraped)
    assert r.quarantined_counted == r.quarantined
    # the proxy did answer for QuestDB
    assert any("rejecting ends" in c and "x 503" in c for c in r.chaos_log)
    assert r.write_errors > 0
    assert t["quotes"].sent > 2_000
    assert t["quotes"].stored >= t["quotes"].sent - t["quotes"].quarantined - t["quotes"].lost_in_gaps
    j = r.as_json()
    assert j["quarantined"] == dict(sorted(r.quarantined.items()))
    assert j["quarantined_rows"]["quotes"] == 3 * injections + POISONED_ROWS
    assert j["chaos"] == ["poison", "questdb-reject"]
