"""Journal retention over the ``.tjz`` journal archive: a local segment goes only when its
archived copy decodes to the segment's own bytes, not merely when the stored file matches
the manifest's hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import msgspec

from tests.ops.test_journal_retention import NOW_US, _archive, _old_then_young, _policy, _write
from tickarchive.archive import catalog, layout
from tickarchive.archive import journal_codec as jc
from tickarchive.archive import manifest as mf
from tickarchive.archive.journal import check_segment
from tickarchive.archive.local_target import LocalTarget
from tickarchive.ingest.journal import JournalReader
from tickarchive.ops.journal_retention import Fate, prune_journal


def test_a_tjz_copy_that_decodes_to_other_bytes_keeps_the_local_segment(tmp_path: Path, ws_records) -> None:
    journal, target = tmp_path / "journal", LocalTarget(tmp_path / "lake")
    _write(journal, ws_records, _old_then_young(136, 0))
    _archive(journal, target)
    segs = JournalReader(journal).segments()
    (stored,) = sorted((target.root / "_journal").rglob(f"{segs[1].name}*"))
    assert stored.name.endswith(layout.JOURNAL_SUFFIX)
    # a well-formed archive file of another segment, and a manifest whose stored-file hashes
    # match it: only decoding it and hashing the result can tell
    forged = jc.encode(segs[0].path.read_bytes(), level=3)
    stored.write_bytes(forged)
    day = dt.date.fromisoformat(stored.parent.name.removeprefix("day="))
    manifest = catalog.read_journal_manifest(target, day)
    assert manifest is not None
    segments = tuple(
        msgspec.structs.replace(
            s, bytes=len(forged), sha256=hashlib.sha256(forged).hexdigest(), sha1=hashlib.sha1(forged).hexdigest()
        )
        if s.name == segs[1].name
        else s
        for s in manifest.segments
    )
    target.put_bytes(layout.journal_manifest_key(day), mf.encode(msgspec.structs.replace(manifest, segments=segments)))
    entry = next(s for s in segments if s.name == segs[1].name)
    (problem,) = check_segment(target, entry)
    assert "decodes to" in problem

    report = prune_journal(journal, target, _policy(), now_us=NOW_US)

    assert [s.name for s in report.deleted] == [segs[0].name]
    assert report.segments[1].fate is Fate.KEPT_UNVERIFIED
    assert segs[1].path.exists()
