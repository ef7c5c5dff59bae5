"""The journal: append-only local segments of raw frames, the collector's source of truth.

See ``docs/journal.md`` for the format, the fsync window, checkpoint semantics and
recovery. In short:

* ``Journal.open(directory, segment_bytes=...)`` takes the directory's writer lock,
  repairs a torn tail left by a crash (``Journal.recovery`` says what was cut) and
  continues the record sequence.
* ``append(frame, recv_ts_us, connection) -> seq`` writes one record with a single
  ``writev`` (no user-space buffer: once it returns, the record survives a crash of
  the process; it survives a crash of the machine after the next ``sync()``).
* ``sync()`` fsyncs the open segment; the driver calls it on a timer
  (``JournalSettings.fsync_interval_ms``). ``stats`` measures the fsync cost and the
  window between the first unsynced append and its fsync.
* ``commit(seq)`` durably records that QuestDB acknowledged every event of every
  record ``<= seq`` (write, fsync, rename, fsync dir). ``acked_seq`` reads it back.
* ``read_from(seq)`` iterates records from ``seq`` on (catch-up after a QuestDB outage,
  replay at start-up from ``acked_seq + 1``).
* ``archivable_segments()`` lists sealed segments whose every record is acknowledged:
  the archive job ships them; ``tickarchive journal prune`` (``ops.journal_retention``)
  deletes them once archived, verified and past local retention.
* ``JournalFull`` is raised on ENOSPC/EDQUOT (nothing written, retry later) and by
  ``check_free_space``.

``JournalReader(directory)`` is the read-only side (no lock, no repair): ``segments``,
``read_from``, ``verify``, ``export``; the ``journal`` CLI commands use it, so they can
run next to a live collector.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import stat
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tickarchive.ingest.errors import JournalError, JournalFull, JournalLocked
from tickarchive.ingest.journal.files import (
    CHECKPOINT_FILE,
    LOCK_FILE,
    Damage,
    RecoveryReport,
    SegmentInfo,
    fsync_dir,
    list_segments,
    map_segment,
    read_checkpoint,
    retention_lock,
    scan,
    walk,
)
from tickarchive.ingest.journal.format import (
    ENCODE_RECORDS_NATIVE,
    HEADER_SIZE,
    Record,
    encode_header,
    first_seq_of,
    segment_name,
)
from tickarchive.ingest.journal.reader import JournalReader, OnDamage

log = logging.getLogger(__name__)

_MARK_EVERY_BYTES: Final = 256 * 1024
_IOV_MAX: Final = 999
"""Buffers per ``writev`` call (a multiple of 3 below Linux's IOV_MAX of 1024)."""
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(slots=True)
class JournalStats:
    """Counters of one ``Journal`` (since open)."""

    appended_records: int = 0
    appended_bytes: int = 0
    fsyncs: int = 0
    fsync_seconds_total: float = 0.0
    fsync_seconds_max: float = 0.0
    window_seconds_last: float = 0.0
    """Age of the oldest unsynced append when the last ``sync()`` made it durable."""
    window_seconds_max: float = 0.0
    rotations: int = 0


# ---------------------------------------------------------------------------- writer


class Journal:
    """The single writer of a journal directory. Build with ``Journal.open``."""

    def __init__(
        self,
        directory: Path,
        segment_bytes: int,
        lock_fd: int,
        recovery: RecoveryReport | None,
        next_seq: int,
        acked_seq: int,
        active: Path,
        active_size: int,
        base_offset: int,
        acked_offset: int,
        on_damage: OnDamage | None = None,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.recovery = recovery
        self.stats = JournalStats()
        self._reader = JournalReader(directory, on_damage)
        for known in recovery.damage if recovery is not None else ():
            self._reader.already_reported(known)
        self._lock_fd = lock_fd
        self._next_seq = next_seq
        self._acked_seq = acked_seq
        self._checkpoint_full = False
        self._active = active
        self._size = active_size
        self._fd = os.open(active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._end = base_offset + active_size
        """Bytes of every segment up to the end of the active one (a global offset)."""
        self._acked_end = acked_offset
        self._marks: collections.deque[tuple[int, int]] = collections.deque()
        self._last_mark = self._end
        self._unsynced_since: float | None = None
        self._conn_cache: dict[str, bytes] = {}
        self._closed = False
        self.last_recv_ts_us: int | None = self._reader.last_record_ts_us()
        """Receive time of the newest record (at open: of the previous run)."""

    # -- opening --------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, segment_bytes: int = 64 * 1024 * 1024, on_damage: OnDamage | None = None
    ) -> Journal:
        """Open (creating if needed) ``directory`` for writing, repairing the newest segment:
        a torn tail (nothing valid after the first bad byte) is cut; a damaged region with
        valid records after it is kept in place and skipped by every reader. Either is
        handed to ``on_damage`` first (the collector copies the bytes aside and counts
        them), and so is any damage a read meets later (``read_from``).

        Raises ``JournalLocked`` if another process writes it.
        """
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open journal directory {directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise JournalLocked(f"journal {directory} is being written by another process") from None
        try:
            with retention_lock(directory):
                return cls._open_locked(directory, segment_bytes, lock_fd, on_damage)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _open_locked(cls, directory: Path, segment_bytes: int, lock_fd: int, on_damage: OnDamage | None) -> Journal:
        acked = read_checkpoint(directory)
        paths = list_segments(directory)
        recovery = None
        last_seq = 0
        if paths:
            # an empty newest segment (a crash right after rotation) continues at its name
            recovery, last_seq = cls._recover(paths[-1], on_damage)
        next_seq = max(last_seq + 1, acked + 1, first_seq_of(paths[-1].name) if paths else 1)
        if not paths:
            active = directory / segment_name(next_seq)
            active.touch()
            fsync_dir(directory)
            paths = [active]
        active = paths[-1]
        sizes = [p.stat().st_size for p in paths]
        base = sum(sizes[:-1])
        acked_offset = cls._offset_after(paths, sizes, acked)
        return cls(
            directory, segment_bytes, lock_fd, recovery, next_seq, acked, active, sizes[-1], base, acked_offset,
            on_damage,
        )

    @staticmethod
    def _recover(path: Path, on_damage: OnDamage | None) -> tuple[RecoveryReport | None, int]:
        """Scan the newest segment: cut a torn tail, keep (and report) damage followed by
        valid records; return the report and the segment's last seq."""
        buf = map_segment(path)
        if buf is None:
            return None, 0
        with buf:
            count = 0
            last_seq = 0
            kept_end = 0
            damage: list[Damage] = []
            tail: Damage | None = None
            for item in scan(buf, path.name, 0, first_seq_of(path.name) - 1):
                if isinstance(item, Damage):
                    if on_damage is not None:
                        on_damage(path, item)  # copied aside before anything is cut
                    if item.tail:
                        tail = item
                    else:
                        damage.append(item)
                    continue
                count += 1
                last_seq = item.seq
                kept_end = item.offset + item.size
            size = len(buf)
        if tail is None and not damage:
            return None, last_seq
        cut = 0
        if tail is not None:
            cut = size - tail.offset
            try:
                with path.open("r+b") as f:
                    f.truncate(tail.offset)
                    os.fsync(f.fileno())
            except OSError as exc:
                raise JournalError(f"cannot truncate torn tail of {path}: {exc.strerror}") from exc
            kept_end = tail.offset
        reason = tail.reason if tail is not None else damage[0].reason
        return RecoveryReport(path.name, count, kept_end, cut, reason, tuple(damage)), last_seq

    @staticmethod
    def _offset_after(paths: list[Path], sizes: list[int], seq: int) -> int:
        """Global byte offset just past record ``seq`` (0 if before everything)."""
        if seq <= 0:
            return 0
        firsts = [first_seq_of(p.name) for p in paths]
        i = bisect.bisect_right(firsts, seq) - 1
        if i < 0:
            return 0
        base = sum(sizes[:i])
        buf = map_segment(paths[i])
        if buf is None:
            return base
        with buf:
            offset = 0
            for item in walk(buf, paths[i].name, firsts[i]):
                if isinstance(item, Damage):
                    offset = item.offset + item.size
                    continue
                if item.seq > seq:
                    break
                offset = item.offset + item.size
            return base + offset

    # -- writing --------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def last_seq(self) -> int:
        """Seq of the last record appended (0 = none ever)."""
        return self._next_seq - 1

    @property
    def acked_seq(self) -> int:
        return self._acked_seq

    @property
    def backlog_records(self) -> int:
        """Records appended but not yet acknowledged."""
        return max(self.last_seq - self._acked_seq, 0)

    @property
    def backlog_bytes(self) -> int:
        """Journal bytes not yet acknowledged (exact after commit of the last seq,
        otherwise an over-estimate by at most 256 KiB)."""
        return self._end - self._acked_end

    @property
    def unsynced(self) -> bool:
        return self._unsynced_since is not None

    def append(self, frame: bytes, recv_ts_us: int, connection: str) -> int:
        """Append one received frame; return its seq. Raises ``JournalFull`` (nothing
        written) or ``JournalError``."""
        if self._size >= self.segment_bytes and self._size > 0:
            self._rotate()
        conn = self._conn_cache.get(connection) or self._connection_id(connection)
        seq = self._next_seq
        header = encode_header(seq, recv_ts_us, conn, frame)
        total = HEADER_SIZE + len(conn) + len(frame)
        try:
            written = os.writev(self._fd, (header, conn, frame))
            if written != total:
                self._write_rest(header + conn + frame, written)
        except OSError as exc:
            self._undo_partial()
            if exc.errno in _FULL_ERRNOS:
                raise JournalFull(f"journal disk full writing {self._active}: {exc.strerror}") from exc
            raise JournalError(f"cannot write journal segment {self._active}: {exc.strerror}") from exc
        self._appended(seq + 1, recv_ts_us, 1, total)
        return seq

    def append_many(self, frames: Sequence[tuple[bytes, int]], connection: str) -> int:
        """Append ``(frame, recv_ts_us)`` records of one connection with one ``writev``
        (a connection hands over every frame it has already received, before parsing any
        of them); return the seq of the first. All or nothing: ``JournalFull`` (nothing
        written) or ``JournalError``. A segment may overrun ``segment_bytes`` by one batch."""
        if not frames:
            raise JournalError("append_many() of no frames")
        if len(frames) == 1:
            frame, recv = frames[0]
            return self.append(frame, recv, connection)
        if self._size >= self.segment_bytes and self._size > 0:
            self._rotate()
        conn = self._conn_cache.get(connection) or self._connection_id(connection)
        first = self._next_seq
        parts: list[bytes]
        if ENCODE_RECORDS_NATIVE is not None:
            # one native call builds every record (header, CRC, connection, payload)
            parts = [ENCODE_RECORDS_NATIVE(frames if type(frames) is list else list(frames), first, conn)]
            total = len(parts[0])
        else:
            parts = []
            total = 0
            fixed = HEADER_SIZE + len(conn)
            for seq, (frame, recv) in enumerate(frames, first):
                parts += (encode_header(seq, recv, conn, frame), conn, frame)
                total += fixed + len(frame)
        try:
            for i in range(0, len(parts), _IOV_MAX):  # writev takes at most IOV_MAX buffers
                chunk = parts[i : i + _IOV_MAX]
                n = os.writev(self._fd, chunk)
                want = sum(len(b) for b in chunk)
                if n != want:
                    self._write_rest(b"".join(chunk), n)
        except OSError as exc:
            self._undo_partial()
            if exc.errno in _FULL_ERRNOS:
                raise JournalFull(f"journal disk full writing {self._active}: {exc.strerror}") from exc
            raise JournalError(f"cannot write journal segment {self._active}: {exc.strerror}") from exc
        self._appended(first + len(frames), frames[-1][1], len(frames), total)
        return first

    def _connection_id(self, connection: str) -> bytes:
        """The encoded connection id (cached); at most 255 bytes."""
        conn = connection.encode()
        if len(conn) > 255:
            raise JournalError(f"connection id {connection!r} longer than 255 bytes")
        self._conn_cache[connection] = conn
        return conn

    def _appended(self, next_seq: int, last_recv_ts_us: int, records: int, nbytes: int) -> None:
        """Account for ``records`` records (``nbytes`` on disk) just written, the last of
        them seq ``next_seq - 1``."""
        self._next_seq = next_seq
        self.last_recv_ts_us = last_recv_ts_us
        self._size += nbytes
        self._end += nbytes
        st = self.stats
        st.appended_records += records
        st.appended_bytes += nbytes
        if self._unsynced_since is None:
            self._unsynced_since = time.monotonic()
        if self._end - self._last_mark >= _MARK_EVERY_BYTES:
            self._marks.append((next_seq - 1, self._end))
            self._last_mark = self._end

    def _write_rest(self, data: bytes, written: int) -> None:
        view = memoryview(data)
        while written < len(data):
            written += os.write(self._fd, view[written:])

    def _undo_partial(self) -> None:
        """Cut whatever part of a failed record reached the file."""
        try:
            st = os.fstat(self._fd)
            if stat.S_ISREG(st.st_mode) and st.st_size > self._size:
                os.ftruncate(self._fd, self._size)
        except OSError as exc:
            raise JournalError(f"cannot repair {self._active} after a failed write: {exc.strerror}") from exc

    def _rotate(self) -> None:
        self.sync()
        os.close(self._fd)
        new = self.directory / segment_name(self._next_seq)
        try:
            self._fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            fsync_dir(self.directory)
        except OSError as exc:
            self._fd = os.open(self._active, os.O_WRONLY | os.O_APPEND)
            if exc.errno in _FULL_ERRNOS:
                raise JournalFull(f"journal disk full creating {new}: {exc.strerror}") from exc
            raise JournalError(f"cannot create journal segment {new}: {exc.strerror}") from exc
        self._active = new
        self._size = 0
        self.stats.rotations += 1

    def sync(self) -> float:
        """fsync the open segment if anything is unsynced; return the seconds it took."""
        since = self._unsynced_since
        if since is None:
            return 0.0
        t0 = time.monotonic()
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise JournalFull(f"journal disk full syncing {self._active}: {exc.strerror}") from exc
            raise JournalError(f"cannot fsync {self._active}: {exc.strerror}") from exc
        t1 = time.monotonic()
        self._unsynced_since = None
        st = self.stats
        took = t1 - t0
        st.fsyncs += 1
        st.fsync_seconds_total += took
        st.fsync_seconds_max = max(st.fsync_seconds_max, took)
        st.window_seconds_last = t1 - since
        st.window_seconds_max = max(st.window_seconds_max, t1 - since)
        return took

    def commit(self, seq: int) -> None:
        """Durably record that every event of every record ``<= seq`` is in QuestDB.

        A seq at or below the current checkpoint is a no-op; beyond the last appended
        record is an error. On a full disk the checkpoint stays where it was (logged, not
        raised: a full disk must not stop the writer): its records are replayed once more
        after a restart, which DEDUP absorbs, and the next commit tries again.
        """
        if seq <= self._acked_seq:
            return
        if seq > self.last_seq:
            raise JournalError(f"cannot commit seq {seq}: last appended record is {self.last_seq}")
        path = self.directory / CHECKPOINT_FILE
        tmp = path.with_suffix(".tmp")
        data = json.dumps({"acked_seq": seq, "committed_at_us": time.time_ns() // 1000}).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            fsync_dir(self.directory)
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                if not self._checkpoint_full:
                    log.error("journal: disk full writing the checkpoint; it stays at seq %d until there is room",
                              self._acked_seq)
                self._checkpoint_full = True
                return
            raise JournalError(f"cannot write checkpoint {path}: {exc.strerror}") from exc
        if self._checkpoint_full:
            log.warning("journal: checkpoint written again (seq %d)", seq)
            self._checkpoint_full = False
        self._acked_seq = seq
        if seq == self.last_seq:
            self._marks.clear()
            self._acked_end = self._end
        else:
            marks = self._marks
            while marks and marks[0][0] <= seq:
                self._acked_end = marks.popleft()[1]

    # -- space ------------------------------------------------------------------------

    def free_bytes(self) -> int:
        st = os.statvfs(self.directory)
        return st.f_bavail * st.f_frsize

    def check_free_space(self, min_free_bytes: int) -> None:
        """Raise ``JournalFull`` when the journal's file system has less than
        ``min_free_bytes`` available (the driver calls it on a timer)."""
        free = self.free_bytes()
        if free < min_free_bytes:
            raise JournalFull(f"journal file system has {free} bytes free, below the floor of {min_free_bytes}")

    # -- reading and archiving --------------------------------------------------------

    def replay_start(self, window_us: int) -> int:
        """Where a writer starting now reads back from: the records acknowledged within
        ``window_us`` before the checkpoint again (see ``JournalReader.replay_start``)."""
        return self._reader.replay_start(self._acked_seq, window_us)

    def read_from(self, seq: int) -> Generator[Record, None, None]:
        """Records from ``seq`` on (see ``JournalReader.read_from``)."""
        return self._reader.read_from(seq)

    def segments(self) -> list[SegmentInfo]:
        return self._reader.segments()

    def archivable_segments(self) -> list[Path]:
        """Sealed segments whose every record QuestDB acknowledged, oldest first.

        The last seq of a sealed segment is the next segment's first seq - 1 (file names),
        so this needs no scan.
        """
        paths = list_segments(self.directory)
        out = []
        for path, nxt in itertools.pairwise(paths):
            if path == self._active:
                break
            if first_seq_of(nxt.name) - 1 <= self._acked_seq:
                out.append(path)
            else:
                break
        return out

    def remove_segment(self, path: Path) -> None:
        """Delete an archived segment; refuses anything not in ``archivable_segments()``."""
        if Path(path) not in self.archivable_segments():
            raise JournalError(f"{path} is not sealed and fully acknowledged; refusing to remove it")
        try:
            Path(path).unlink()
            fsync_dir(self.directory)
        except OSError as exc:
            raise JournalError(f"cannot remove {path}: {exc.strerror}") from exc

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """fsync and close (idempotent)."""
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self._closed = True
            os.close(self._fd)
            os.close(self._lock_fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
