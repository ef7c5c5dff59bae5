"""Reading (and writing) the replay line format (docs/journal.md, "Commands").

One raw Deribit frame per line, optionally prefixed by its receive time:
``<unix seconds>: <frame>`` (seconds with up to microsecond decimals). This is what
``tickarchive journal export`` writes and what ``replay``, the bench and the simulator's
replay read.

Also understood, so recorded captures replay unchanged (cryptofeed's raw recorder):

* ``<url> <-> <ts>``: a connection header (skipped, counted in ``Capture.skipped``);
* ``<url> <- <ts>: <frame>``: a frame *we sent* (skipped);
* ``<url> -> <ts>: <body>``: a REST response body received at ``<ts>`` (yielded, with
  ``rest=True``);
* ``configuration: {...}``: recorder configuration (skipped);
* empty lines (skipped).

A line starting with ``{`` or ``[`` is a bare frame without a receive time; it gets the
time of the previous timed line (or 0). Anything else is counted in
``Capture.unreadable`` with its line number kept in ``Capture.unreadable_lines`` (first
20), never an exception: one bad line loses nothing else.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from tickarchive.ingest.errors import CaptureError

_MAX_KEPT_BAD_LINES: Final = 20


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    recv_ts_us: int
    frame: bytes
    line_no: int
    rest: bool = False
    """A REST response body (``<url> -> <ts>: body``) rather than a WebSocket frame."""


@dataclass(slots=True)
class Capture:
    """Counters of one read; filled while iterating ``records``."""

    path: Path
    frames: int = 0
    bytes_read: int = 0
    skipped: int = 0
    unreadable: int = 0
    unreadable_lines: list[int] = field(default_factory=list)


def parse_seconds_us(text: bytes) -> int:
    """``b"1626993723.804318"`` → 1626993723804318 (exact, no float rounding)."""
    s = text.strip()
    neg = s.startswith(b"-")
    if neg:
        s = s[1:]
    whole, _, frac = s.partition(b".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a time in seconds: {text!r}")
    us = int(whole) * 1_000_000 + (int((frac + b"000000")[:6]) if frac else 0)
    return -us if neg else us


def format_seconds_us(ts_us: int) -> str:
    """1626993723804318 → ``"1626993723.804318"`` (the inverse of ``parse_seconds_us``)."""
    sign = "-" if ts_us < 0 else ""
    a = abs(ts_us)
    return f"{sign}{a // 1_000_000}.{a % 1_000_000:06d}"


def format_line(recv_ts_us: int, frame: bytes) -> bytes:
    """One replay line (with its newline). Newlines inside the frame (pretty-printed
    JSON; never inside JSON strings, where they would be invalid) become spaces."""
    if b"\n" in frame or b"\r" in frame:
        frame = frame.replace(b"\r", b" ").replace(b"\n", b" ")
    return format_seconds_us(recv_ts_us).encode() + b": " + frame + b"\n"


def _classify(line: bytes, last_ts: int) -> tuple[str, int, bytes]:
    """(what, ts, frame) with what in frame | rest | skip | bad."""
    c = line[:1]
    if c in (b"{", b"["):
        return "frame", last_ts, line
    if line.startswith(b"configuration:"):
        return "skip", last_ts, b""
    head, sep, rest = line.partition(b": ")
    if sep and head[:1].isdigit():
        try:
            return "frame", parse_seconds_us(head), rest
        except ValueError:
            return "bad", last_ts, b""
    # cryptofeed: "<url> <-> ts", "<url> <- ts: frame", "<url> -> ts: body"
    parts = head.split(b" ")
    if len(parts) >= 3 and parts[-2] in (b"<->", b"<-", b"->"):
        try:
            ts = parse_seconds_us(parts[-1])
        except ValueError:
            return "bad", last_ts, b""
        if parts[-2] == b"->" and sep:
            return "rest", ts, rest
        return "skip", ts, b""
    return "bad", last_ts, b""


def iter_lines(stream: BinaryIO, capture: Capture) -> Iterator[CaptureRecord]:
    last_ts = 0
    for line_no, raw in enumerate(stream, start=1):
        capture.bytes_read += len(raw)
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            capture.skipped += 1
            continue
        what, ts, frame = _classify(line, last_ts)
        if what == "bad":
            capture.unreadable += 1
            if len(capture.unreadable_lines) < _MAX_KEPT_BAD_LINES:
                capture.unreadable_lines.append(line_no)
            continue
        last_ts = ts
        if what == "skip":
            capture.skipped += 1
            continue
        capture.frames += 1
        yield CaptureRecord(ts, frame, line_no, what == "rest")


def open_capture(path: Path) -> BinaryIO:
    """Open a capture for reading (``.zst`` files are decompressed on the fly)."""
    try:
        if path.is_dir():
            raise CaptureError(f"{path}: is a directory, not a capture file")
        f = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".zst":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(f, closefd=True))
    return f


def read_capture(path: Path) -> tuple[Capture, Iterator[CaptureRecord]]:
    """Counters and the records of one capture file (lazy; counters fill as you iterate).

    Raises ``CaptureError`` if the file cannot be opened; read errors while iterating are
    translated to ``CaptureError`` too.
    """
    capture = Capture(path)
    stream = open_capture(path)

    def gen() -> Iterator[CaptureRecord]:
        try:
            with stream:
                yield from iter_lines(stream, capture)
        except OSError as exc:
            raise CaptureError(f"error reading {path}: {exc}") from exc

    return capture, gen()
