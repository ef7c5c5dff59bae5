"""Raw journal archive (daily segments in the journal archive format) and the warm-retention decision."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import msgspec
import pytest
import zstandard

from tests.archive.conftest import MONTH, OPTIONS, B2Env
from tests.real import REAL
from tickarchive.archive import catalog, journal_codec, layout, manifest
from tickarchive.archive.errors import IntegrityError
from tickarchive.archive.export import export_month
from tickarchive.archive.journal import archive_journal_day, check_journal_day, restore_journal_day, verify_journal_day
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.archive.retention import Verdict, decide, oldest_kept_month, verified_pairs
from tickarchive.archive.verify import verify_month
from tickarchive.months import Month
from tickarchive.tables import TRADES

DAY = dt.date(2026, 11, 3)


def _segments(tmp_path: Path) -> list[Path]:
    """Two journal-like segments built from the real recorded frames."""
    frames = sorted(p for p in REAL.iterdir() if ".ws." in p.name)
    assert frames, "the real capture fixture is missing"
    raw = frames[0].read_bytes()
    out = []
    for i, chunk in enumerate((raw, raw[: len(raw) // 2])):
        p = tmp_path / "journal" / f"seg-{i:06d}.log"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(chunk)
        out.append(p)
    return out


def test_journal_day_round_trip_local(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "lake")
    segs = _segments(tmp_path)
    result = archive_journal_day(target, DAY, segs, zstd_level=6)
    assert (result.status, result.uploaded) == ("archived", 2)
    m = result.manifest
    assert [s.name for s in m.segments] == ["seg-000000.log", "seg-000001.log"]
    assert m.segments[0].original_bytes == segs[0].stat().st_size
    assert m.segments[0].bytes < m.segments[0].original_bytes  # JSON frames compress
    stored = (target.root / "_journal/day=2026-11-03/seg-000000.log.tjz").read_bytes()
    assert journal_codec.decode(stored) == segs[0].read_bytes()
    assert m.compression == "tjz1+zstd(6)"
    verify_journal_day(target, DAY)
    assert archive_journal_day(target, DAY, segs).status == "up-to-date"
    restored = restore_journal_day(target, DAY, tmp_path / "back")
    assert [p.read_bytes() for p in restored] == [p.read_bytes() for p in segs]
    index = catalog.read_index(target)
    assert [(d.day, d.segments) for d in index.journal_days] == [("2026-11-03", 2)]


def test_journal_grows_and_rejects_a_changed_segment(tmp_path: Path, b2: B2Env) -> None:
    target = b2.target()
    segs = _segments(tmp_path)
    archive_journal_day(target, DAY, segs[:1])
    grown = archive_journal_day(target, DAY, segs)
    assert (grown.status, grown.uploaded, len(grown.manifest.segments)) == ("archived", 1, 2)
    verify_journal_day(target, DAY)
    segs[0].write_bytes(segs[0].read_bytes() + b"tampered\n")
    with pytest.raises(IntegrityError, match=r"seg-000000\.log differs from its archived copy"):
        archive_journal_day(target, DAY, segs)


def test_journal_flipped_byte_names_the_segment(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "lake")
    archive_journal_day(target, DAY, _segments(tmp_path))
    path = target.root / "_journal/day=2026-11-03/seg-000001.log.tjz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    problems = check_journal_day(target, DAY)
    assert problems
    assert all(p.startswith("_journal/day=2026-11-03/seg-000001.log.tjz:") for p in problems)
    assert check_journal_day(target, dt.date(2026, 11, 4)) == ["_manifests/journal/day=2026-11-04.json: no manifest"]


def test_retention_window() -> None:
    assert oldest_kept_month(dt.date(2026, 11, 24), 12) == Month(2025, 11)
    assert oldest_kept_month(dt.date(2026, 1, 1), 1) == Month(2025, 12)


def test_retention_drops_only_old_and_verified_months() -> None:
    warm = [
        ("quotes", Month(2025, 9)),
        ("quotes", Month(2025, 10)),
        ("quotes", Month(2025, 11)),
        ("trades", Month(2025, 10)),
        ("trades", Month(2026, 11)),
    ]
    verified = {("quotes", Month(2025, 9)), ("quotes", Month(2025, 11)), ("trades", Month(2026, 11))}
    got = {(d.table, str(d.month)): d.verdict for d in decide(warm, verified, dt.date(2026, 11, 24), 12)}
    assert got == {
        ("quotes", "2025-09"): Verdict.DROP,
        ("quotes", "2025-10"): Verdict.KEEP_UNVERIFIED,
        ("quotes", "2025-11"): Verdict.KEEP_RECENT,
        ("trades", "2025-10"): Verdict.KEEP_UNVERIFIED,
        ("trades", "2026-11"): Verdict.KEEP_RECENT,
    }


def test_verified_pairs_reads_verify_records(store: MemoryStore, tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "lake")
    export_month(store, target, TRADES, MONTH, OPTIONS)
    candidates = [("trades", MONTH), ("quotes", MONTH)]
    assert verified_pairs(target, candidates) == set()
    verify_month(target, "trades", MONTH)
    assert verified_pairs(target, candidates) == {("trades", MONTH)}
    assert layout.verified_key("trades", MONTH) in {o.key for o in target.list("_verified/")}


def test_a_day_archived_as_plain_zstd_still_verifies_and_restores(tmp_path: Path) -> None:
    """Days archived before the journal archive format hold ``<segment>.zst``: they verify,
    restore and count as archived (nothing is re-uploaded)."""
    target = LocalTarget(tmp_path / "lake")
    segs = _segments(tmp_path)
    result = archive_journal_day(target, DAY, segs)
    legacy = []
    for seg in result.manifest.segments:
        data = zstandard.ZstdCompressor(level=3).compress(segs[[p.name for p in segs].index(seg.name)].read_bytes())
        key = seg.path.removesuffix(".tjz") + ".zst"
        (target.root / key).write_bytes(data)
        (target.root / seg.path).unlink()
        digest = hashlib.sha256(data).hexdigest()
        sha1 = hashlib.sha1(data).hexdigest()
        legacy.append(msgspec.structs.replace(seg, path=key, bytes=len(data), sha256=digest, sha1=sha1))
    old = msgspec.structs.replace(result.manifest, segments=tuple(legacy), compression="zstd(3)")
    target.put_bytes(layout.journal_manifest_key(DAY), manifest.encode(old))
    verify_journal_day(target, DAY)
    again = archive_journal_day(target, DAY, segs)
    assert (again.status, again.uploaded) == ("up-to-date", 0)
    restored = restore_journal_day(target, DAY, tmp_path / "back")
    assert [p.read_bytes() for p in restored] == [p.read_bytes() for p in segs]
