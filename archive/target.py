"""Where archive files go: the ``Target`` protocol and ``open_target(url)``.

Targets are flat key/value stores of files addressed by ``/``-separated keys relative to
the target root. Writes are atomic per object: a reader sees either nothing or the
whole file under its final key. Implementations: ``archive.local_target.LocalTarget``
(``file://DIR`` or a bare path) and ``archive.b2_target.B2Target`` (``b2://bucket/prefix``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    bytes: int
    sha1: str | None
    """SHA-1 the target itself recorded (B2), or None when it keeps none (local)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A local, readable copy of an object (the file itself for a local target)."""

    path: Path
    info: ObjectInfo


class Target(Protocol):
    @property
    def url(self) -> str: ...

    def put_file(self, local: Path, key: str, sha1: str) -> ObjectInfo:
        """Store ``local`` under ``key`` atomically; ``sha1`` is checked by the target."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    def get_bytes(self, key: str) -> bytes:
        """The object's content; ``ObjectNotFound`` when absent."""
        ...

    def fetch(self, key: str) -> AbstractContextManager[Fetched]:
        """A local copy of the object for the duration of the ``with`` block."""
        ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a folder ending in ``/`` or '')."""
        ...

    def delete(self, key: str) -> None: ...
