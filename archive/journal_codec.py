"""The journal archive's segment codec (``.tjz``): a structured, lossless transform of a
journal segment (docs/archive.md, "The journal archive format").

A journal segment (``tickarchive.ingest.journal.format``) is a run of records, each a
28-byte header, the connection id and the raw frame. Compressed as one block of bytes,
most of what zstd spends goes to things a model of the records predicts almost exactly:
the sequence number (+1), the CRC (a function of the rest), the receive time (a few µs
after the previous one), and inside each frame the JSON keys and instrument names
(repeated in every frame of a channel) and numbers that differ from the same field of the
channel's previous frame by a few units of their last digit. The transform takes each
record apart into streams, zstd compresses the streams, and the decoder puts every byte
back; the SHA-256 of the rebuilt segment is checked on every restore.

Container: ``b"TJZ" + version (1) + mode`` then one zstd frame. Mode 1 (``RAW``) holds the
segment bytes as they are (what the encoder falls back to whenever the structured form
would not rebuild them exactly); mode 0 (``STRUCTURED``) holds the *body*:

``varint(records)`` then the streams below, each ``varint(length) + bytes``, in order:

* ``conns``: connection ids (``varint(len) + bytes``), in order of first use;
* ``rec_conn``, ``rec_seq``, ``rec_ts``: per record the connection's index (new ones are
  the next index), ``zz(seq - previous seq - 1)`` and ``zz(recv_ts_us - previous)``;
* ``crc_bad``: records whose stored CRC is not the computed one: ``varint(count)`` then
  ``varint(index delta)`` and the 4 stored bytes each (normally empty);
* ``ctx``: per frame its channel (``"channel":"..."`` string, the context every other
  prediction is made in): 0 none, k the k-th known channel, known + 1 a new one (its bytes
  in ``ctx_lit``);
* ``skel``: per frame its skeleton (the frame with every number and string value cut out):
  0 the context's previous skeleton, k + 1 the k-th known one, known + 1 a new one (in
  ``skel_lit``);
* ``str``: per string hole 0 = the context's previous value at that path, 1 = the channel,
  2 + k = the k-th known string, 2 + known = a new one (in ``str_lit``);
* ``scale``: per number hole 0 = the scale of its reference value, else scale + 1;
* ``pred``: one byte per number path: the predictor its deltas are taken against;
* ``nums``: per number path (in path order) ``varint(length) + `` the zigzag deltas;
* ``tail``: bytes after the last whole record (a torn or damaged end), as they are.

A *number* is the longest prefix of a run outside strings matching
``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` with at most 18 digits and not a negative zero, held as
(value, scale) with scale 0 for an integer and d + 1 for d decimals: its text is a pure
function of the pair, so ``0.0115`` and ``0.01150`` stay themselves. Anything else stays
in the skeleton, where the bytes 0, 1 and 2 (hole markers) are escaped with a 2.

This module is the container (``encode``, ``decode``, ``payload``) and the choice between
the native codec and the reference one: ``archive.journal_codec_encode`` and
``archive.journal_codec_decode`` (their shared model: ``archive.journal_codec_model``) are
the reference (and the fallback without the native extension);
``tickarchive_native.tjz_encode_body`` / ``tjz_decode_body`` produce and read the same
bodies byte for byte (tests/archive/test_journal_codec.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import zstandard

from tickarchive import native_ext
from tickarchive.archive.errors import IntegrityError
from tickarchive.archive.journal_codec_decode import decode_body_py
from tickarchive.archive.journal_codec_encode import encode_body_py, split_records, tokenize

__all__ = [
    "COLUMNS", "DEFAULT_LEVEL", "FRAMES", "HEADER_BYTES", "MAGIC", "RAW", "STRUCTURED", "VERSION", "decode",
    "decode_body", "decode_body_py", "encode", "encode_body", "encode_body_py", "payload", "split_records", "tokenize",
]

MAGIC: Final = b"TJZ"
VERSION: Final = 1
STRUCTURED: Final = 0
RAW: Final = 1
HEADER_BYTES: Final = 5


# ---------------------------------------------------------------------------- container

_NATIVE_ENCODE: Final[Callable[[bytes], bytes] | None] = native_ext.enabled("tjz_encode_body")
_NATIVE_DECODE: Final[Callable[[bytes], bytes] | None] = native_ext.enabled("tjz_decode_body")
FRAMES: Final[Any] = native_ext.enabled("TjzFrames")
"""``tickarchive_native.TjzFrames``: a structured body's frames, a batch at a time, without
rebuilding the segment (replay's fast path), or None."""
COLUMNS: Final[Any] = native_ext.enabled("TjzColumns")
"""``tickarchive_native.TjzColumns``: ``FRAMES`` with the Deribit ticker and book frames
decoded straight into columns from the body's values (replay's fastest path), or None."""

encode_body: Final[Callable[[bytes], bytes]] = _NATIVE_ENCODE or encode_body_py
decode_body: Final[Callable[[bytes], bytes]] = _NATIVE_DECODE or decode_body_py

DEFAULT_LEVEL: Final = 19


def _zstd(data: bytes, level: int) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compress(data)


def encode(segment: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """A ``.tjz`` file of ``segment``: structured when that rebuilds it exactly (checked
    here, by decoding), else the raw segment."""
    try:
        body = encode_body(segment)
    except (ValueError, OverflowError, RecursionError):
        body = None
    if body is not None and decode_body(body) == segment:
        return MAGIC + bytes((VERSION, STRUCTURED)) + _zstd(body, level)
    return MAGIC + bytes((VERSION, RAW)) + _zstd(segment, level)


def payload(data: bytes) -> tuple[int, bytes]:
    """(mode, zstd-decompressed payload) of a ``.tjz`` file (``IntegrityError`` if it is
    not one)."""
    if len(data) < HEADER_BYTES or data[:3] != MAGIC:
        raise IntegrityError("not a journal archive file (no TJZ magic)")
    if data[3] != VERSION:
        raise IntegrityError(f"journal archive version {data[3]} is not supported (this code reads {VERSION})")
    mode = data[4]
    if mode not in (RAW, STRUCTURED):
        raise IntegrityError(f"journal archive: unknown mode {mode}")
    try:
        return mode, zstandard.ZstdDecompressor().decompress(data[HEADER_BYTES:])
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"journal archive: not valid zstd: {exc}") from None


def decode(data: bytes) -> bytes:
    """The segment a ``.tjz`` file holds (``IntegrityError`` if it is not one)."""
    mode, body = payload(data)
    if mode == RAW:
        return body
    try:
        return decode_body(body)
    except (ValueError, IndexError, KeyError) as exc:
        raise IntegrityError(f"journal archive: damaged body: {exc}") from None
