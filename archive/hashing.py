"""SHA-256 and SHA-1 of files in one streaming pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Digests:
    bytes: int
    sha256: str
    sha1: str


def file_digests(path: Path) -> Digests:
    """Size, SHA-256 and SHA-1 of a file (``OSError`` propagates to the caller)."""
    h256 = hashlib.sha256()
    h1 = hashlib.sha1()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h256.update(chunk)
            h1.update(chunk)
            size += len(chunk)
    return Digests(size, h256.hexdigest(), h1.hexdigest())


def bytes_digests(data: bytes) -> Digests:
    return Digests(len(data), hashlib.sha256(data).hexdigest(), hashlib.sha1(data).hexdigest())
