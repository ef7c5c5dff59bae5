"""The fault campaign's crash faults through real processes: QuestDB SIGKILLed and
started again, the collector's journal damaged in place (a length field and a payload in
a sealed and in the active segment) and the collector SIGKILLed on it, the journal's file
system filled to the last block and freed, with a connection dropped every 4 s. Nothing
sent is lost: every row is stored, or inside a reported gap, or in the quarantine (the
damaged records, copied aside), and every trade is stored, backfilled if need be (a
backfill the killed collector had queued is resumed by the next one)."""

from __future__ import annotations

from pathlib import Path

from tickarchive.loadtest.harness import LoadSpec, run


def test_questdb_kill_journal_damage_and_full_disk_lose_nothing(tmp_path: Path) -> None:
    spec = LoadSpec(
        rate=800.0,
        duration_s=20.0,
        instruments=60,
        connections=2,
        chaos=("disconnects", "questdb-kill", "journal-corrupt", "disk-full"),
        run_dir=tmp_path / "run",
        trades_per_s=10.0,
    )
    lines: list[str] = []
    r = run(spec, echo=lines.append)
    t = r.recon.by_table()
    assert r.recon.lost == 0, [(x.table, x.lost, x.lost_sample) for x in r.recon.tables]
    assert r.recon.duplicates == 0
    assert r.recon.uncovered_disconnects == ()
    log = "\n".join(r.chaos_log)
    assert "NOT DONE" not in log
    assert "QuestDB SIGKILL" in log
    assert "QuestDB started again" in log
    assert "disk full:" in log
    assert " 0 bytes free" in log
    assert "disk freed" in log
    flips = [c for c in r.chaos_log if "flipped" in c]
    assert len(flips) == 4
    assert r.collector_starts == 2
    # every damaged record the collector met is listed (each region once); what it did not
    # meet was acknowledged before the damage and is stored
    assert 1 <= r.quarantined.get("journal_damage", 0) <= 4
    assert r.quarantine_unresolved == []
    assert set(r.quarantined) == {"journal_damage"}
    assert t["trades"].lost == 0
    assert t["quotes"].sent > 3_000
    assert t["book_changes"].sent > 3_000
