"""``open_target``: the archive target a URL names (``file://DIR``, a bare path, or
``b2://bucket/prefix``), built from the implementations of ``tickarchive.archive.target.Target``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tickarchive.archive.errors import InvalidArgument
from tickarchive.archive.target import Target

if TYPE_CHECKING:
    from b2sdk.v2 import B2Api


def open_target(url: str, *, b2_api: B2Api | None = None) -> Target:
    """The target named by ``url``: ``file://DIR``, a bare path, or ``b2://bucket/prefix``."""
    if url.startswith("b2://"):
        from tickarchive.archive.b2_target import B2Target

        rest = url[len("b2://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise InvalidArgument(f"invalid B2 target {url!r}: expected b2://bucket/prefix")
        if b2_api is None:
            return B2Target.from_env(bucket, prefix)
        return B2Target(b2_api, bucket, prefix)
    if "://" in url and not url.startswith("file://"):
        raise InvalidArgument(f"unsupported archive target {url!r}: use file://DIR, a path or b2://bucket/prefix")
    from tickarchive.archive.local_target import LocalTarget

    path = url[len("file://") :] if url.startswith("file://") else url
    if not path:
        raise InvalidArgument("empty archive target path")
    return LocalTarget(Path(path))
