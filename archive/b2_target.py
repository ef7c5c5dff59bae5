"""``b2://bucket/prefix``: the archive in a Backblaze B2 bucket, through b2sdk.

Credentials come from ``B2_APPLICATION_KEY_ID`` and ``B2_APPLICATION_KEY``. Every upload
carries its SHA-1, which B2 checks on receipt; the SHA-1 B2 reports back is compared
again. Small files keep it in ``contentSha1``; files uploaded as large files (b2sdk's
simulator does so from 400 bytes) keep it in ``file_info['large_file_sha1']``: both are
accepted. b2sdk errors are translated into ``archive.errors`` types here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from b2sdk.v2 import B2Api, InMemoryAccountInfo
from b2sdk.v2.exception import B2Error, FileNotPresent, NonExistentBucket

from tickarchive.archive.errors import IntegrityError, InvalidArgument, ObjectNotFound, TargetError
from tickarchive.archive.target import Fetched, ObjectInfo

KEY_ID_ENV = "B2_APPLICATION_KEY_ID"
KEY_ENV = "B2_APPLICATION_KEY"


def stored_sha1(content_sha1: str | None, file_info: dict[str, Any] | None) -> str | None:
    """The SHA-1 B2 holds for a file: ``contentSha1`` or, for large files, ``large_file_sha1``."""
    if content_sha1 and content_sha1 != "none":
        return content_sha1.removeprefix("unverified:")
    if file_info:
        value = file_info.get("large_file_sha1")
        if isinstance(value, str) and value:
            return value
    return None


class B2Target:
    def __init__(self, api: B2Api, bucket: str, prefix: str = "", *, min_part_size_bytes: int | None = None) -> None:
        """``min_part_size_bytes`` raises the size below which b2sdk uploads in one request."""
        self.api = api
        self.bucket_name = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.min_part_size_bytes = min_part_size_bytes
        try:
            self.bucket = api.get_bucket_by_name(bucket)
        except NonExistentBucket:
            raise TargetError(f"{self.url}: bucket {bucket!r} does not exist") from None
        except B2Error as exc:
            raise TargetError(f"{self.url}: {exc}") from exc

    @classmethod
    def from_env(cls, bucket: str, prefix: str = "") -> B2Target:
        key_id = os.environ.get(KEY_ID_ENV)
        key = os.environ.get(KEY_ENV)
        if not key_id or not key:
            raise InvalidArgument(f"b2://{bucket}: set {KEY_ID_ENV} and {KEY_ENV} in the environment")
        api = B2Api(InMemoryAccountInfo())
        try:
            api.authorize_account("production", key_id, key)
        except B2Error as exc:
            raise TargetError(f"b2://{bucket}: authorization failed: {exc}") from exc
        return cls(api, bucket, prefix)

    @property
    def url(self) -> str:
        return f"b2://{self.bucket_name}/{self.prefix}"

    def _name(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise InvalidArgument(f"invalid object key {key!r}")
        return self.prefix + key

    def put_file(self, local: Path, key: str, sha1: str) -> ObjectInfo:
        try:
            version = self.bucket.upload_local_file(
                str(local), self._name(key), sha1_sum=sha1, min_part_size=self.min_part_size_bytes
            )
        except B2Error as exc:
            raise TargetError(f"{self.url}: upload of {key} failed: {exc}") from exc
        except OSError as exc:
            raise TargetError(f"{self.url}: cannot read {local} for upload: {exc}") from exc
        got = stored_sha1(version.content_sha1, version.file_info)
        if got is not None and got != sha1:
            raise IntegrityError(f"{self.url}: {key}: B2 stored SHA-1 {got}, expected {sha1}")
        self._drop_older_versions(self._name(key), version.id_)
        return ObjectInfo(key, int(version.size), got)

    def _drop_older_versions(self, name: str, keep_id: str) -> None:
        """B2 keeps every version of a name; an overwrite here means replace, so older
        versions (an interrupted earlier export, the previous index) are deleted."""
        try:
            for v in self.bucket.list_file_versions(name):
                if v.file_name == name and v.id_ != keep_id:
                    self.bucket.delete_file_version(v.id_, v.file_name)
        except B2Error as exc:
            raise TargetError(f"{self.url}: cannot delete old versions of {name}: {exc}") from exc

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        import hashlib

        sha1 = hashlib.sha1(data).hexdigest()
        with tempfile.TemporaryDirectory(prefix="tickarchive-b2-") as tmp:
            path = Path(tmp) / "object"
            path.write_bytes(data)
            return self.put_file(path, key, sha1)

    def get_bytes(self, key: str) -> bytes:
        with self.fetch(key) as fetched:
            return fetched.path.read_bytes()

    @contextmanager
    def fetch(self, key: str) -> Iterator[Fetched]:
        with tempfile.TemporaryDirectory(prefix="tickarchive-b2-") as tmp:
            path = Path(tmp) / "object"
            try:
                downloaded = self.bucket.download_file_by_name(self._name(key))
                downloaded.save_to(str(path))
            except FileNotPresent:
                raise ObjectNotFound(key, self.url) from None
            except B2Error as exc:
                raise TargetError(f"{self.url}: download of {key} failed: {exc}") from exc
            dv = downloaded.download_version
            info = ObjectInfo(key, int(dv.size), stored_sha1(dv.content_sha1, dv.file_info))
            yield Fetched(path, info)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            version = self.bucket.get_file_info_by_name(self._name(key))
        except FileNotPresent:
            return None
        except B2Error as exc:
            raise TargetError(f"{self.url}: cannot stat {key}: {exc}") from exc
        return ObjectInfo(key, int(version.size), stored_sha1(version.content_sha1, version.file_info))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        try:
            entries = list(self.bucket.ls(self.prefix + folder, recursive=True))
        except B2Error as exc:
            raise TargetError(f"{self.url}: cannot list {prefix!r}: {exc}") from exc
        out = []
        for version, _folder in entries:
            key = version.file_name[len(self.prefix) :]
            if key.startswith(prefix):
                out.append(ObjectInfo(key, int(version.size), stored_sha1(version.content_sha1, version.file_info)))
        yield from sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Delete every version of the object (B2 keeps old versions on overwrite)."""
        name = self._name(key)
        try:
            versions = [v for v in self.bucket.list_file_versions(name) if v.file_name == name]
            for v in versions:
                self.bucket.delete_file_version(v.id_, v.file_name)
        except B2Error as exc:
            raise TargetError(f"{self.url}: cannot delete {key}: {exc}") from exc
