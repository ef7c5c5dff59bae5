"""The B2 target against b2sdk's RawSimulator: SHA-1 on upload, verify, restore, crashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from b2sdk.v2.exception import ServiceError

from tests.archive.conftest import MONTH, OPTIONS, B2Env
from tickarchive.archive import catalog
from tickarchive.archive.b2_target import B2Target, stored_sha1
from tickarchive.archive.errors import IntegrityError, InvalidArgument, TargetError
from tickarchive.archive.export import export_month
from tickarchive.archive.memory import MemoryStore
from tickarchive.archive.parquet_files import sort_table
from tickarchive.archive.restore import restore_month
from tickarchive.archive.target import ObjectInfo
from tickarchive.archive.targets import open_target
from tickarchive.archive.verify import verify_month
from tickarchive.tables import QUOTES, TRADES


def _versions(env: B2Env) -> dict[str, int]:
    bucket = env.api.get_bucket_by_name("tick-lake")
    out: dict[str, int] = {}
    for v, _ in bucket.ls("", latest_only=False, recursive=True):
        out[v.file_name] = out.get(v.file_name, 0) + 1
    return out


def test_export_verify_restore_through_b2(store: MemoryStore, b2: B2Env) -> None:
    target = open_target("b2://tick-lake/lake", b2_api=b2.api)
    assert target.url == "b2://tick-lake/lake/"
    result = export_month(store, target, QUOTES, MONTH, OPTIONS)
    assert (result.uploaded, result.skipped) == (3, 0)
    # parts are > 400 bytes: the simulator stored them as large files, SHA-1 in file_info
    bucket = b2.api.get_bucket_by_name("tick-lake")
    info = bucket.get_file_info_by_name("lake/table=quotes/month=2026-11/part-0000.parquet")
    assert info.content_sha1 == "none"
    assert info.file_info["large_file_sha1"] == result.manifest.files[0].sha1
    assert stored_sha1(info.content_sha1, info.file_info) == result.manifest.files[0].sha1

    verify_month(target, "quotes", MONTH)
    assert catalog.is_verified(target, "quotes", MONTH)
    warm = MemoryStore()
    r = restore_month(target, warm, QUOTES, MONTH)
    assert (r.rows_read, r.rows_inserted) == (4500, 4500)
    assert sort_table(QUOTES, warm.table(QUOTES)).equals(sort_table(QUOTES, store.table(QUOTES)))
    assert export_month(store, target, QUOTES, MONTH, OPTIONS).status == "up-to-date"


def test_small_uploads_carry_content_sha1(store: MemoryStore, b2: B2Env) -> None:
    target = b2.target(small_uploads=True)
    result = export_month(store, target, TRADES, MONTH, OPTIONS)
    info = target.stat(result.manifest.files[0].path)
    assert info == ObjectInfo(
        result.manifest.files[0].path, result.manifest.files[0].bytes, result.manifest.files[0].sha1
    )
    verify_month(target, "trades", MONTH)


def test_injected_upload_errors_then_rerun_completes(store: MemoryStore, b2: B2Env) -> None:
    target = b2.target(small_uploads=True)
    # two transient failures: b2sdk retries them, the export succeeds
    b2.sim.set_upload_errors([ServiceError("injected 503"), ServiceError("injected 503")])
    assert export_month(store, target, TRADES, MONTH, OPTIONS).status == "exported"
    # five in a row exhaust b2sdk's retries: the export fails, nothing is published
    b2.sim.set_upload_errors([ServiceError("injected 503")] * 5)
    with pytest.raises(TargetError, match=r"upload of table=quotes/month=2026-11/part-0000\.parquet failed"):
        export_month(store, target, QUOTES, MONTH, OPTIONS)
    assert catalog.read_month_manifest(target, "quotes", MONTH) is None
    result = export_month(store, target, QUOTES, MONTH, OPTIONS)
    assert (result.status, result.uploaded, result.manifest.total_rows) == ("exported", 3, 4500)
    verify_month(target, "quotes", MONTH)
    # overwritten names (the index, twice) keep a single version
    versions = _versions(b2)
    assert versions["lake/_index.json"] == 1
    assert all(n == 1 for n in versions.values()), versions


class _CrashAfter:
    """A target whose process 'dies' (an exception) after ``n`` successful data uploads."""

    def __init__(self, inner: B2Target, n: int) -> None:
        self.inner = inner
        self.left = n

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put_file(self, local: Path, key: str, sha1: str) -> ObjectInfo:
        if self.left == 0:
            raise KeyboardInterrupt("simulated crash")
        self.left -= 1
        return self.inner.put_file(local, key, sha1)


def test_crash_mid_upload_then_rerun_no_duplicates(store: MemoryStore, b2: B2Env) -> None:
    target = b2.target()
    with pytest.raises(KeyboardInterrupt):
        export_month(store, _CrashAfter(target, 2), QUOTES, MONTH, OPTIONS)  # type: ignore[arg-type]
    assert catalog.read_month_manifest(target, "quotes", MONTH) is None  # not archived
    assert sorted(o.key for o in target.list("table=quotes/")) == [
        "table=quotes/month=2026-11/part-0000.parquet",
        "table=quotes/month=2026-11/part-0001.parquet",
    ]
    result = export_month(store, target, QUOTES, MONTH, OPTIONS)
    # the rewritten parts are byte-identical, so the two already uploaded are skipped
    assert (result.status, result.uploaded, result.skipped) == ("exported", 1, 2)
    versions = _versions(b2)
    assert all(n == 1 for n in versions.values()), versions
    verify_month(target, "quotes", MONTH)
    warm = MemoryStore()
    assert restore_month(target, warm, QUOTES, MONTH).rows_inserted == 4500


def test_corrupt_object_in_b2_fails_verify(store: MemoryStore, b2: B2Env, tmp_path: Path) -> None:
    target = b2.target()
    result = export_month(store, target, TRADES, MONTH, OPTIONS)
    entry = result.manifest.files[0]
    # overwrite the object with a corrupted copy (B2 accepts it: its SHA-1 is of the new bytes)
    with target.fetch(entry.path) as fetched:
        data = bytearray(fetched.path.read_bytes())
    data[100] ^= 0xFF
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    target.put_file(bad, entry.path, hashlib.sha1(bytes(data)).hexdigest())
    with pytest.raises(IntegrityError) as info:
        verify_month(target, "trades", MONTH)
    assert all(p.startswith(entry.path + ":") for p in info.value.problems)
    assert any("target recorded SHA-1" in p for p in info.value.problems)
    assert not catalog.is_verified(target, "trades", MONTH)
    with pytest.raises(IntegrityError, match="SHA-256 mismatch"):
        restore_month(target, MemoryStore(), TRADES, MONTH)


def test_missing_bucket_and_credentials_are_clear_errors(b2: B2Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TargetError, match="bucket 'nope' does not exist"):
        B2Target(b2.api, "nope", "x")
    monkeypatch.delenv("B2_APPLICATION_KEY_ID", raising=False)
    with pytest.raises(InvalidArgument, match="set B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY"):
        open_target("b2://bucket/prefix")
