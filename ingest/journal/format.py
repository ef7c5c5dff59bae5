"""The on-disk record format of the journal (pure: bytes in, bytes out).

A segment file is a plain concatenation of records; there is no file header, so a
segment can be cut at any record boundary and stay valid. One record::

    offset size  field
    0      2     magic        b"TJ"
    2      1     version      1
    3      1     conn_len     length of the connection id in bytes (0..255)
    4      4     length       payload length in bytes (u32, little endian)
    8      8     seq          record sequence number (u64), +1 per record, never reused
    16     8     recv_ts_us   receive time, µs since the epoch (i64)
    24     4     crc          CRC-32 (zlib) of bytes 0..23 + connection + payload
    28     n     connection   the connection id, UTF-8 (conn_len bytes)
    28+n   len   payload      the raw frame exactly as received

Every field that locates data (length, conn_len) is covered by the CRC, so a torn or
corrupt record is always detected: either it runs past the end of the file, or its CRC
fails.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tickarchive import native_ext

MAGIC: Final = b"TJ"
VERSION: Final = 1
HEADER: Final = struct.Struct("<2sBBIQqI")
HEADER_SIZE: Final = HEADER.size  # 28
_PREFIX: Final = struct.Struct("<2sBBIQq")  # the CRC-covered part of the header
MAX_PAYLOAD: Final = (1 << 32) - 1
SEGMENT_SUFFIX: Final = ".tjl"


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    recv_ts_us: int
    connection: str
    frame: bytes
    segment: str
    """File name of the segment holding it."""
    offset: int
    """Byte offset of the record's header in its segment."""
    size: int
    """Total bytes on disk (header + connection + frame)."""


def encode_header(seq: int, recv_ts_us: int, connection: bytes, frame: bytes) -> bytes:
    """The header of a record (CRC included). ``connection`` is already encoded."""
    prefix = _PREFIX.pack(MAGIC, VERSION, len(connection), len(frame), seq, recv_ts_us)
    crc = zlib.crc32(frame, zlib.crc32(connection, zlib.crc32(prefix)))
    return prefix + crc.to_bytes(4, "little")


def encode_record(seq: int, recv_ts_us: int, connection: bytes, frame: bytes) -> bytes:
    return encode_header(seq, recv_ts_us, connection, frame) + connection + frame


def _encode_records_py(frames: list[tuple[bytes, int]], first_seq: int, connection: bytes) -> bytes:
    """The records of ``frames`` (``(payload, recv_ts_us)``), seqs from ``first_seq``,
    concatenated (the reference for the native ``encode_records``)."""
    return b"".join(encode_record(first_seq + i, recv, connection, frame) for i, (frame, recv) in enumerate(frames))


ENCODE_RECORDS_NATIVE: Final[Callable[[list[tuple[bytes, int]], int, bytes], bytes] | None] = native_ext.enabled(
    "encode_records"
)
"""``tickarchive_native.encode_records`` (one call and one buffer for a batch: the
header, CRC, connection and payload of each record, byte for byte ``encode_record``),
or None without the extension or with ``TICKARCHIVE_NATIVE=0``."""

encode_records: Final = ENCODE_RECORDS_NATIVE or _encode_records_py
"""Concatenated records of a batch: native when available, else Python."""


class BadRecord(Exception):
    """Internal: why a record at some offset is not valid (see ``decode_at``)."""

    def __init__(self, reason: str, torn: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.torn = torn
        """True when the record runs past the end of the data (a partial write)."""


def decode_at(buf: bytes | memoryview | mmap.mmap, offset: int, segment: str, check_crc: bool = True) -> Record:
    """The record starting at ``offset`` of ``buf``, or ``BadRecord``."""
    end = len(buf)
    if end - offset < HEADER_SIZE:
        raise BadRecord(f"{end - offset} bytes left, less than a header", torn=True)
    magic, version, conn_len, length, seq, recv_ts_us, crc = HEADER.unpack_from(buf, offset)
    if magic != MAGIC:
        raise BadRecord(f"bad magic {bytes(magic)!r}", torn=False)
    if version != VERSION:
        raise BadRecord(f"unknown record version {version}", torn=False)
    body = offset + HEADER_SIZE
    stop = body + conn_len + length
    if stop > end:
        raise BadRecord(f"record of {stop - offset} bytes runs past the end ({end - offset} left)", torn=True)
    conn = bytes(buf[body : body + conn_len])
    frame = bytes(buf[body + conn_len : stop])
    if check_crc:
        got = zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(buf[offset : offset + 24])))
        if got != crc:
            raise BadRecord(f"CRC mismatch (stored {crc:#010x}, computed {got:#010x})", torn=stop == end)
    return Record(seq, recv_ts_us, conn.decode("utf-8", "replace"), frame, segment, offset, stop - offset)


def peek_seq(buf: bytes | memoryview | mmap.mmap, offset: int) -> tuple[int, int]:
    """(seq, total size) of the record at ``offset`` without checking it (fast skipping)."""
    _m, _v, conn_len, length, seq, _ts, _crc = HEADER.unpack_from(buf, offset)
    return seq, HEADER_SIZE + conn_len + length


def segment_name(first_seq: int) -> str:
    """Segment files are named by the seq of their first record, so they sort in order."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def first_seq_of(name: str) -> int:
    return int(name.removesuffix(SEGMENT_SUFFIX))
