"""The chaos machinery of a load run that lives outside the simulator: the chaos proxy
in front of QuestDB (``questdb-reject``, ``journal-corrupt``), the journal's own small
file system (``disk-full``), the record of damaged journal records (``journal-corrupt``)
and, after the run, the collector's quarantine read back as keys (``quarantine_keys``).

``ChaosRig`` is built from the run's modes; the harness asks it where the journal lives,
which HTTP port the collector must write to, which settings the collector needs, and
hands it the actions it owns.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Final

from tickarchive.loadtest import chaos, chaos_journal
from tickarchive.loadtest.chaos_disk import SmallFilesystem
from tickarchive.loadtest.chaos_proxy import ChaosProxy
from tickarchive.loadtest.errors import HarnessError
from tickarchive.loadtest.journal_files import QUARANTINE
from tickarchive.loadtest.quarantine_keys import CorruptedRecord, QuarantineReport, read_quarantine, write_keys_csv

JOURNAL_BYTES_PER_FRAME: Final = 2048
"""Journal bytes a ticker+book frame costs at most, with the trades, index and side
records around it (sizing the ``disk-full`` file system: it must hold the whole run)."""
FS_MARGIN_BYTES: Final = 512 * 1024 * 1024
"""Room on the ``disk-full`` file system beyond the run's journal (poison frames of 10 MiB,
their quarantine copies, the segment being filled when the disk is full)."""
SEGMENT_SECONDS: Final = 1.0
"""``journal-corrupt``: a segment holds about this many seconds of frames, so the hold
before the damage seals several segments past the checkpoint."""
_CORRUPT_RETRY_S: Final = 0.5
_CORRUPT_GIVE_UP_S: Final = 60.0


class ChaosRig:
    def __init__(self, run_dir: Path, modes: tuple[str, ...], rate: float, duration_s: float) -> None:
        self.run_dir = run_dir
        self.modes = modes
        self.rate = rate
        self.fs: SmallFilesystem | None = None
        if "disk-full" in modes:
            size = int(rate * (duration_s + 120.0) * JOURNAL_BYTES_PER_FRAME) + FS_MARGIN_BYTES
            self.fs = SmallFilesystem(run_dir / "journal-fs", run_dir / "journal-fs.img", size)
            self.journal_dir = self.fs.mountpoint / "journal"
        else:
            self.journal_dir = run_dir / "journal"
        self.proxy: ChaosProxy | None = None
        self.corrupted: list[CorruptedRecord] = []
        self.log: list[str] = []
        self._corrupt_waited_s = 0.0

    # ---- set-up ---------------------------------------------------------------------

    def collector_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if "journal-corrupt" in self.modes:
            seg = max(256 * 1024, int(self.rate * 700 * SEGMENT_SECONDS))
            env["TICKARCHIVE_JOURNAL__SEGMENT_BYTES"] = str(seg)
        if self.fs is not None:
            # the free-space gate closes only when the disk is really full: the filler takes
            # it from "plenty" to 0 at once, so the ENOSPC path runs, not just the gate
            env["TICKARCHIVE_JOURNAL__MIN_FREE_BYTES"] = str(1024 * 1024)
        return env

    def setup(self) -> None:
        if self.fs is not None:
            kind = self.fs.mount()
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            self.log.append(f"journal on its own {kind} file system of {self.fs.size_bytes / 1e6:,.0f} MB")

    def collector_http_port(self, host: str, questdb_http_port: int) -> int:
        """The port the collector writes to: QuestDB's, or the chaos proxy's in front of it."""
        if not chaos.PROXIED & set(self.modes):
            return questdb_http_port
        self.proxy = ChaosProxy(host, questdb_http_port, host)
        port = self.proxy.start()
        self.log.append(f"chaos proxy on {host}:{port} in front of QuestDB's {questdb_http_port}")
        return port

    # ---- actions --------------------------------------------------------------------

    def _proxy(self) -> ChaosProxy:
        if self.proxy is None:
            raise HarnessError("chaos proxy not started")
        return self.proxy

    def reject(self, on: bool, t_s: float) -> None:
        p = self._proxy()
        if on:
            p.start_rejecting()
            self.log.append(f"{t_s:6.1f}s proxy: rejecting (400 once, 503, a few rows refused for good)")
        else:
            p.stop_rejecting()
            a = p.stats.answered
            self.log.append(
                f"{t_s:6.1f}s proxy: rejecting ends ({a['transient_400']} x 400 once, {a['503']} x 503, "
                f"{a['poisoned_400']} x 400 for {len(p.stats.poisoned_rows)} rows refused for good)"
            )

    def hold(self, on: bool, t_s: float) -> None:
        self._proxy().hold = on
        self.log.append(f"{t_s:6.1f}s proxy: {'holding every write (503)' if on else 'writes flow again'}")

    def corrupt(self, t_s: float, kill_collector: Callable[[], None], start_collector: Callable[[], None]) -> bool:
        """Damage the journal, SIGKILL the collector, release the hold, start it again.
        False: the journal has no segment to damage yet (ask again shortly)."""
        if not chaos_journal.ready(self.journal_dir):
            self._corrupt_waited_s += _CORRUPT_RETRY_S
            if self._corrupt_waited_s > _CORRUPT_GIVE_UP_S:
                raise HarnessError(f"journal-corrupt: {self.journal_dir} never had a sealed and a long active segment")
            return False
        recs = chaos_journal.corrupt(self.journal_dir)
        self.corrupted.extend(recs)
        (self.run_dir / "corrupted.json").write_text(json.dumps([r.as_dict() for r in self.corrupted], indent=1))
        for r in recs:
            self.log.append(f"{t_s:6.1f}s journal: {r.what} of seq {r.seq} flipped ({r.segment} @ {r.offset})")
        kill_collector()
        if self.proxy is not None:
            self.proxy.hold = False
        start_collector()
        return True

    @staticmethod
    def retry_after_s() -> float:
        return _CORRUPT_RETRY_S

    def fill(self, t_s: float) -> None:
        if self.fs is None:
            raise HarnessError("disk-full: no journal file system")
        n = self.fs.fill()
        self.log.append(f"{t_s:6.1f}s disk full: {n / 1e6:,.1f} MB taken, {self.fs.free_bytes()} bytes free")

    def release(self, t_s: float) -> None:
        if self.fs is None:
            raise HarnessError("disk-full: no journal file system")
        self.fs.release()
        self.log.append(f"{t_s:6.1f}s disk freed: {self.fs.free_bytes() / 1e6:,.1f} MB free")

    # ---- after the run --------------------------------------------------------------

    def quarantine(self, stored_dir: Path) -> QuarantineReport:
        """The collector's quarantine as counts and keys (``stored_dir/quarantined.csv``)."""
        rep = read_quarantine(self.journal_dir, self.corrupted)
        write_keys_csv(stored_dir / "quarantined.csv", rep)
        if self.fs is not None:  # the journal's file system goes with the run: keep the quarantine
            src = self.journal_dir / QUARANTINE
            if src.is_dir():
                shutil.copytree(src, self.run_dir / QUARANTINE, dirs_exist_ok=True)
        return rep

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        if self.fs is not None:
            self.fs.release()
            self.fs.unmount()
