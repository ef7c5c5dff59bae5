"""Local journal retention (``tickarchive journal prune``): a segment goes only when it is
acknowledged, outside the replay window, past retention, archived and verified; what is
deleted can always be restored from the archive, byte for byte (docs/journal.md)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickarchive.archive.journal import archive_journal_day, restore_journal_day, segments_by_day
from tickarchive.archive.local_target import LocalTarget
from tickarchive.ingest.journal import Journal, JournalReader
from tickarchive.ops.journal_retention import Fate, RetentionPolicy, prune_journal

DAY_US = 86_400_000_000
NOW_US = 1_800_000_000_000_000  # 2027-01-15 08:00 UTC
SEGMENT_BYTES = 8192
KEEP_ALL = 1 << 60


def _write(directory: Path, ws_records, times_us: list[int], acked: int | None = None) -> list[bytes]:
    """Journal the real capture's frames at ``times_us``; acknowledge up to ``acked``
    (default: every record)."""
    frames = [r.frame for r in ws_records][: len(times_us)]
    with Journal.open(directory, segment_bytes=SEGMENT_BYTES) as j:
        for i, (frame, ts) in enumerate(zip(frames, times_us, strict=True)):
            j.append(frame, ts, f"c{i % 2}")
        j.commit(len(frames) if acked is None else acked)
    return frames


def _archive(directory: Path, target: LocalTarget) -> None:
    reader = JournalReader(directory)
    ready = [(s.path, s.first_ts_us) for s in reader.segments() if s.sealed and s.acked]
    for day, paths in segments_by_day(ready).items():
        archive_journal_day(target, day, paths)


def _policy(retain_days: float = 3.0, retain_max_bytes: int = KEEP_ALL, window_s: float = 0.0) -> RetentionPolicy:
    return RetentionPolicy(retain_days=retain_days, retain_max_bytes=retain_max_bytes, replay_window_s=window_s)


def _old_then_young(n_old: int, n_young: int) -> list[int]:
    """``n_old`` records ten days ago, then ``n_young`` an hour ago, one second apart."""
    return [NOW_US - 10 * DAY_US + i * 1_000_000 for i in range(n_old)] + [
        NOW_US - 3_600_000_000 + i * 1_000_000 for i in range(n_young)
    ]


def _restored_and_local(directory: Path, target: LocalTarget, tmp_path: Path) -> list[bytes]:
    """Every frame that still exists: restored from the archive, then the local journal's
    records past what was restored."""
    restored = tmp_path / "restored"
    for path in sorted((target.root / "_manifests" / "journal").glob("day=*.json")):
        restore_journal_day(target, dt.date.fromisoformat(path.stem.removeprefix("day=")), restored)
    frames = {r.seq: r.frame for r in JournalReader(restored).read_from(0)} if restored.exists() else {}
    for r in JournalReader(directory).read_from(0):
        frames.setdefault(r.seq, r.frame)
    return [frames[s] for s in sorted(frames)]


def test_archived_verified_old_segments_go_and_nothing_is_lost(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    frames = _write(journal, ws_records, _old_then_young(100, 36))
    _archive(journal, target)
    before = JournalReader(journal).segments()
    old = [s for s in before[:-1] if s.last_ts_us is not None and s.last_ts_us < NOW_US - 3 * DAY_US]
    assert len(old) >= 3

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)

    assert [s.name for s in report.deleted] == [s.name for s in old]
    assert all(s.fate is Fate.DELETED and "verified" in s.detail for s in report.deleted)
    kept = report.segments[len(old)]
    assert kept.fate is Fate.KEPT_RETENTION  # the first segment with a record of the last hour
    assert report.blocked is None
    assert report.bytes_before - report.bytes_after == sum(s.bytes for s in old)
    after = JournalReader(journal).segments()
    assert [s.name for s in after] == [s.name for s in before[len(old):]]
    # nothing is lost: the archive gives back what was deleted, byte for byte
    assert _restored_and_local(journal, target, tmp_path) == frames
    # the writer opens the pruned journal and continues the sequence
    with Journal.open(journal, segment_bytes=SEGMENT_BYTES) as j:
        assert j.acked_seq == 136
        assert j.append(b'{"x":1}', NOW_US, "c0") == 137
    # a second run has nothing more to delete
    again = prune_journal(journal, target, _policy(), now_us=NOW_US)
    assert again.deleted == ()
    assert again.segments[0].fate is Fate.KEPT_RETENTION


def test_a_segment_not_in_the_archive_stays_and_so_does_everything_after_it(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(136, 0))
    names = [s.name for s in JournalReader(journal).segments()]

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)

    assert report.deleted == ()
    assert report.segments[0].fate is Fate.KEPT_NOT_ARCHIVED
    assert report.blocked == report.segments[0]
    assert [s.name for s in JournalReader(journal).segments()] == names


def test_an_archived_copy_that_fails_verification_stops_the_run(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(136, 0))
    _archive(journal, target)
    segs = JournalReader(journal).segments()
    stored = sorted((target.root / "_journal").rglob(f"{segs[1].name}*"))
    assert len(stored) == 1
    data = bytearray(stored[0].read_bytes())
    data[len(data) // 2] ^= 0x40
    stored[0].write_bytes(bytes(data))

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)

    assert [s.name for s in report.deleted] == [segs[0].name]
    assert report.segments[1].fate is Fate.KEPT_UNVERIFIED
    assert report.blocked == report.segments[1]
    assert segs[1].path.exists()


def test_a_manifest_naming_other_bytes_keeps_the_local_segment(tmp_path: Path, ws_records) -> None:
    """The archive holds a segment of that name, but not this file (another journal's, a
    segment rewritten by hand): the local one is the only copy of its bytes."""
    journal, other, target = tmp_path / "journal", tmp_path / "other", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(136, 0))
    _write(other, list(reversed(ws_records)), _old_then_young(136, 0))
    _archive(other, target)
    first = JournalReader(journal).segments()[0]

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)

    assert report.deleted == ()
    assert report.segments[0].fate is Fate.KEPT_DIFFERS
    assert first.path.exists()


def test_unacknowledged_segments_and_the_replay_window_stay(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    times = [NOW_US - 10 * DAY_US + i * 1_000_000 for i in range(136)]
    _write(journal, ws_records, times)
    segs_all = JournalReader(journal).segments()
    _archive(journal, target)
    # acknowledged up to the middle of the fifth segment
    acked = segs_all[4].first_seq + 1  # type: ignore[operator]
    (journal / "checkpoint.json").write_text(f'{{"acked_seq": {acked}}}')

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)
    assert [s.name for s in report.deleted] == [s.name for s in segs_all[:4]]
    assert report.segments[4].fate is Fate.KEPT_UNACKED

    # a replay window reaching back 40 s before the checkpoint keeps those records too
    journal2, target2 = tmp_path / "journal2", LocalTarget(tmp_path / "lake2")
    _write(journal2, ws_records, times, acked=acked)
    _archive(journal2, target2)
    start = JournalReader(journal2).replay_start(acked, 40_000_000)
    report2 = prune_journal(journal2, target2, _policy(window_s=40.0), now_us=NOW_US)
    assert report2.deleted
    assert all(s.bytes > 0 for s in report2.deleted)
    last_deleted = segs_all[len(report2.deleted) - 1]
    assert last_deleted.last_seq is not None
    assert last_deleted.last_seq < start
    assert report2.segments[len(report2.deleted)].fate is Fate.KEPT_REPLAY_WINDOW
    assert next(r.seq for r in JournalReader(journal2).read_from(start)) == start


def test_past_retain_max_bytes_young_segments_go_oldest_first(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(0, 136))
    _archive(journal, target)
    segs = JournalReader(journal).segments()
    total = sum(s.bytes for s in segs)
    budget = total - segs[0].bytes - segs[1].bytes

    report = prune_journal(journal, target, _policy(retain_max_bytes=budget), now_us=NOW_US)

    assert [s.name for s in report.deleted] == [segs[0].name, segs[1].name]
    assert report.segments[2].fate is Fate.KEPT_RETENTION
    assert report.bytes_after == budget
    assert not report.over_budget


def test_dry_run_deletes_nothing(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(136, 0))
    _archive(journal, target)
    names = [s.name for s in JournalReader(journal).segments()]

    report = prune_journal(journal, target, _policy(), dry_run=True, now_us=NOW_US)

    assert report.deleted
    assert all(s.fate is Fate.WOULD_DELETE for s in report.deleted)
    assert [s.name for s in JournalReader(journal).segments()] == names


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TICKARCHIVE_PATHS__LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("TICKARCHIVE_WRITER__REPLAY_WINDOW_S", "0")
    return tmp_path


def test_cli_prunes_and_fails_when_a_due_segment_is_not_archived(cli_env: Path, ws_records) -> None:
    from tickarchive.cli import app

    journal, lake = cli_env / "local" / "journal", cli_env / "lake"
    now = time.time_ns() // 1000
    times = [now - 10 * DAY_US + i * 1_000_000 for i in range(136)]
    _write(journal, ws_records, times)
    runner = CliRunner()
    args = ["journal", "prune", "--target", str(lake)]

    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert "kept: not archived" in r.output
    assert "is past local retention but not archived" in r.output

    _archive(journal, LocalTarget(lake))
    names = [s.name for s in JournalReader(journal).segments()]
    r = runner.invoke(app, [*args, "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.output.count("would delete") == len(names) - 1
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.output.count("  deleted") == len(names) - 1
    assert [s.name for s in JournalReader(journal).segments()] == names[-1:]
