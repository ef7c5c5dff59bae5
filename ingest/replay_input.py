"""Replay's inputs: raw frames in bulk from the files ``tickarchive replay`` reads.

* replay-format text (``journal export``, recorded captures; ``.zst`` decompressed on the
  fly): the lines ``tickarchive.ingest.journal.capture.iter_lines`` reads, the same frames
  and counters;
* journal segments (``*.tjl``, ``tickarchive.ingest.journal.format``): every record whose
  CRC checks, in order (a record whose CRC fails is skipped and counted; a torn or
  unreadable record ends the file there, its bytes counted);
* journal archive files (``*.tjz``, ``tickarchive.archive.journal_codec``): decoded, then
  read as a segment; natively, the frames straight from the structured body
  (``TjzFrames``), and for a decoder that takes them (``ReplayDecoder.tjz_columns``) the
  Deribit ticker and book frames straight into columns (``TjzColumns``).

Each file yields ``FrameBatch``es (frames as offsets into one buffer, no copy per frame);
the native extension finds them (``tickarchive_native.replay_lines`` /
``journal_frames``), with a Python path of the same results without it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

from tickarchive import native_ext
from tickarchive.archive import journal_codec
from tickarchive.archive.errors import ArchiveError
from tickarchive.ingest.errors import CaptureError
from tickarchive.ingest.journal.capture import Capture, iter_lines, open_capture
from tickarchive.ingest.journal.format import SEGMENT_SUFFIX
from tickarchive.venue import FrameBatch

ARCHIVE_SUFFIX: Final = ".tjz"
BATCH_FRAMES: Final = 16_384
"""Frames per batch handed to the decoder."""
TEXT_CHUNK_BYTES: Final = 8 << 20
"""Bytes of replay-format text read per step."""
_MAX_KEPT_BAD_LINES: Final = 20

_REPLAY_LINES: Final[Callable[..., Any] | None] = native_ext.enabled("replay_lines")
_JOURNAL_FRAMES: Final[Callable[[bytes], Any] | None] = native_ext.enabled("journal_frames")
_HEAD: Final = struct.Struct("<2sBBIQqI")


@dataclass(slots=True)
class InputStats:
    """What one file held (filled while its batches are read)."""

    path: Path
    frames: int = 0
    bytes_read: int = 0
    skipped: int = 0
    """Lines that are not frames by design: empty lines, connection headers, frames we
    sent, recorder configuration."""
    unreadable: int = 0
    """Lines that are neither a frame nor anything known (damage)."""
    unreadable_lines: list[int] = field(default_factory=list)
    """Line numbers of the first unreadable lines."""
    damaged_records: int = 0
    """Journal records whose CRC does not match (skipped)."""
    torn_bytes: int = 0
    """Bytes after the last whole journal record of a segment (a torn or unreadable end)."""

    @property
    def damaged(self) -> bool:
        return bool(self.unreadable or self.damaged_records or self.torn_bytes)

    def describe_damage(self) -> str:
        parts = []
        if self.unreadable:
            lines = ", ".join(map(str, self.unreadable_lines))
            more = "" if len(self.unreadable_lines) == self.unreadable else ", ..."
            parts.append(f"{self.unreadable} unreadable line(s) (line {lines}{more})")
        if self.damaged_records:
            parts.append(f"{self.damaged_records} journal record(s) failing their CRC")
        if self.torn_bytes:
            parts.append(f"{self.torn_bytes} bytes after the last whole record")
        return f"{self.path}: " + "; ".join(parts)


def read_batches(
    path: Path, stats: InputStats, batch_frames: int = BATCH_FRAMES, columns: bool = False
) -> Iterator[FrameBatch]:
    """The frames of ``path`` in batches (``CaptureError`` if it cannot be read).
    ``columns``: the Deribit ticker and book frames of ``.tjz`` files come decoded into
    columns (``FrameBatch.columns``, for a decoder whose ``tjz_columns`` is true)."""
    name = path.name
    if name.endswith(ARCHIVE_SUFFIX):
        data = _read(path)
        stats.bytes_read = len(data)
        try:
            mode, body = journal_codec.payload(data)
            if mode == journal_codec.STRUCTURED and journal_codec.FRAMES is not None:
                reader = journal_codec.COLUMNS if columns and journal_codec.COLUMNS is not None else None
                yield from _archive_batches(path, body, stats, batch_frames, reader)
                return
            segment = body if mode == journal_codec.RAW else journal_codec.decode_body(body)
        except (ArchiveError, ValueError) as exc:
            raise CaptureError(f"{path}: {exc}") from None
        yield from _segment_batches(segment, stats, batch_frames)
    elif name.endswith(SEGMENT_SUFFIX):
        segment = _read(path)
        stats.bytes_read = len(segment)
        yield from _segment_batches(segment, stats, batch_frames)
    else:
        yield from _text_batches(path, stats)


def _archive_batches(
    path: Path, body: bytes, stats: InputStats, batch_frames: int, columns_reader: Any
) -> Iterator[FrameBatch]:
    try:
        frames = journal_codec.FRAMES(body) if columns_reader is None else columns_reader(body)
        while (got := frames.read(batch_frames)) is not None:
            batch = FrameBatch(*got)
            stats.frames += len(batch)
            yield batch
    except ValueError as exc:
        raise CaptureError(f"{path}: {exc}") from None
    stats.damaged_records += frames.damaged
    stats.torn_bytes += frames.tail_bytes


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------- segments


def _segment_frames(segment: bytes) -> tuple[bytes, bytes, bytes, int, int, int]:
    """(starts, ends, recv_ts, records, damaged, stop): ``journal_frames`` in Python."""
    starts, ends, recv = bytearray(), bytearray(), bytearray()
    records = damaged = 0
    off, n = 0, len(segment)
    while n - off >= _HEAD.size:
        magic, version, conn_len, length, _seq, ts, crc = _HEAD.unpack_from(segment, off)
        body = off + _HEAD.size
        stop = body + conn_len + length
        if magic != b"TJ" or version != 1 or stop > n:
            break
        if zlib.crc32(segment[body:stop], zlib.crc32(segment[off : off + 24])) == crc:
            records += 1
            starts += (body + conn_len).to_bytes(8, "little")
            ends += stop.to_bytes(8, "little")
            recv += ts.to_bytes(8, "little", signed=True)
        else:
            damaged += 1
        off = stop
    return bytes(starts), bytes(ends), bytes(recv), records, damaged, off


def _segment_batches(segment: bytes, stats: InputStats, batch_frames: int) -> Iterator[FrameBatch]:
    if _JOURNAL_FRAMES is not None:
        starts, ends, recv, records, damaged, stop = _JOURNAL_FRAMES(segment)
    else:
        starts, ends, recv, records, damaged, stop = _segment_frames(segment)
    stats.damaged_records += damaged
    stats.torn_bytes += len(segment) - stop
    yield from _split(segment, starts, ends, recv, records, stats, batch_frames)


def _split(
    buf: bytes, starts: bytes, ends: bytes, recv: bytes, records: int, stats: InputStats, batch_frames: int
) -> Iterator[FrameBatch]:
    step = 8 * batch_frames
    for a in range(0, 8 * records, step):
        batch = FrameBatch(buf, starts[a : a + step], ends[a : a + step], recv[a : a + step])
        stats.frames += len(batch)
        yield batch


# ---------------------------------------------------------------------------- text


def _text_batches(path: Path, stats: InputStats) -> Iterator[FrameBatch]:
    stream = open_capture(path)
    try:
        with stream:
            if _REPLAY_LINES is None:
                yield from _text_batches_py(stream, stats)
                return
            carry = b""
            last_ts = 0
            line_no = 1
            while True:
                chunk = stream.read(TEXT_CHUNK_BYTES)
                final = not chunk
                buf = carry + chunk if carry else chunk
                if not buf:
                    return
                starts, ends, recv, used, last_ts, lines, skipped, bad, bad_lines = _REPLAY_LINES(
                    buf, last_ts, line_no, final
                )
                line_no += lines
                stats.bytes_read += used
                stats.skipped += skipped
                stats.unreadable += bad
                room = _MAX_KEPT_BAD_LINES - len(stats.unreadable_lines)
                stats.unreadable_lines.extend(bad_lines[:room])
                carry = buf[used:]
                if starts:
                    batch = FrameBatch(buf, starts, ends, recv)
                    stats.frames += len(batch)
                    yield batch
                if final:
                    return
    except OSError as exc:
        raise CaptureError(f"error reading {path}: {exc}") from exc


def _text_batches_py(stream: BinaryIO, stats: InputStats) -> Iterator[FrameBatch]:
    capture = Capture(stats.path)
    frames: list[bytes] = []
    recv = bytearray()

    def flush() -> FrameBatch:
        buf = b"".join(frames)
        starts, ends = bytearray(), bytearray()
        at = 0
        for f in frames:
            starts += at.to_bytes(8, "little")
            at += len(f)
            ends += at.to_bytes(8, "little")
        return FrameBatch(buf, bytes(starts), bytes(ends), bytes(recv))

    for rec in iter_lines(stream, capture):
        frames.append(rec.frame)
        recv += rec.recv_ts_us.to_bytes(8, "little", signed=True)
        if len(frames) >= BATCH_FRAMES:
            yield flush()
            frames.clear()
            recv.clear()
    if frames:
        yield flush()
    stats.frames += capture.frames
    stats.bytes_read += capture.bytes_read
    stats.skipped += capture.skipped
    stats.unreadable += capture.unreadable
    stats.unreadable_lines.extend(capture.unreadable_lines)
