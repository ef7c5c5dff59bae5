"""``tickarchive loadtest``: drive simulator -> collector -> QuestDB at a target rate,
with optional chaos, then reconcile against the simulator's send log.

Sequence (all processes are subprocesses this harness started, stopped by their PIDs):

1. QuestDB under ``<run_dir>/questdb`` on free loopback ports (the harness owns it: the
   ``questdb-restart`` chaos stops and restarts it, ``questdb-kill`` SIGKILLs it by its
   PID and starts it again), migrated; the chaos rig (``loadtest.harness_chaos``) mounts
   the journal's own file system (``disk-full``) and starts the chaos proxy in front of
   QuestDB (``questdb-reject``, ``journal-corrupt``);
2. ``tickarchive sim --port 0 --rate R`` (send log spooled to ``<run_dir>/sendlog``);
3. ``tickarchive collect --simulator ws://...`` (journal ``<run_dir>/journal``, or on the
   small file system, metrics on a free port); the measurement starts once every
   connection is up and subscribed;
4. ``duration_s`` seconds of load, chaos actions on schedule (``loadtest.chaos``), one
   sample per second (simulator frames, collector rows/latency/CPU/RSS: ``samples.csv``);
5. quiesce: the ticker+book rate goes to 0, the collector catches up (nothing buffered,
   journal fully acknowledged), ``cutoff`` = then minus 2 s, the collector is stopped
   (SIGTERM: it drains), the send log exported, WAL applied, keys exported from QuestDB,
   the collector's quarantine read (``loadtest.quarantine_keys``);
6. ``loadtest.reconcile`` (DuckDB anti-joins on files), figures, JSON.

Latency = exchange timestamp to QuestDB acknowledgement, from the collector's
``tickarchive_ack_lag_seconds`` histogram: two observations per acknowledged batch, the
ages of its oldest and newest live market row (gap rows and backfilled trades are not
counted), so the quantiles bracket the batch's rows; max is the bound of the highest
non-empty bucket.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import psutil

from tickarchive.loadtest import chaos
from tickarchive.loadtest.errors import HarnessError
from tickarchive.loadtest.harness_chaos import ChaosRig
from tickarchive.loadtest.harness_data import (
    LoadSpec,
    Result,
    RunningCounter,
    Sample,
    closes_before,
    cpu_pct,
    frames_sent,
    gap_windows,
    mean_after_first,
    to_ms,
    write_samples,
)
from tickarchive.loadtest.harness_procs import (
    CollectorProcess,
    Metrics,
    QuestDBStarter,
    SimProcess,
    proc_usage,
    questdb_export_csv,
    questdb_scalar,
)
from tickarchive.loadtest.latency import add_buckets, bucket_delta, max_bound, quantile
from tickarchive.loadtest.quarantine_keys import QuarantineReport
from tickarchive.loadtest.reconcile import Reconciliation, reconcile, uncovered_disconnects
from tickarchive.settings import PathsSettings, QuestDBSettings
from tickarchive.store.stack import ephemeral
from tickarchive.store.stack.procs import dir_size_bytes
from tickarchive.store.stack.questdb import QuestDBServer

__all__ = ["QUIESCE_RATE", "LoadSpec", "Result", "Sample", "run"]

QUIESCE_RATE = 100.0
"""Ticker+book frames/s while the collector drains at the end of a run."""
_TABLES_COUNTED = ("quotes", "book_changes", "trades", "index_ticks", "instruments", "gaps")



class _Run:
    def __init__(self, spec: LoadSpec, echo: Any) -> None:
        self.spec = spec
        self.echo = echo
        d = spec.run_dir
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        self.dir = d
        self._qdb: ephemeral.EphemeralQuestDB | None = None
        self.sim = SimProcess(
            spec.rate, spec.instruments, spec.trades_per_s, d / "sendlog", d / "sim.log", spec.seed,
            currencies=spec.currencies, kinds=spec.kinds,
        )
        self.rig = ChaosRig(d, spec.chaos, spec.rate, spec.duration_s)
        extra = {
            "TICKARCHIVE_JOURNAL__MIN_FREE_BYTES": str(64 * 1024 * 1024),
            "TICKARCHIVE_DERIBIT__CURRENCIES": json.dumps(list(spec.currencies)),
            "TICKARCHIVE_DERIBIT__KINDS": json.dumps(list(spec.kinds)),
        }
        if spec.flush_interval_ms is not None:
            extra["TICKARCHIVE_WRITER__FLUSH_INTERVAL_MS"] = str(spec.flush_interval_ms)
        if "stale" in spec.chaos:
            extra["TICKARCHIVE_DERIBIT__STALE_CONNECTION_S"] = str(chaos.STALE_CONNECTION_S)
        extra.update(self.rig.collector_env())
        self.extra_env = extra
        self.collector: CollectorProcess | None = None
        self.stored = RunningCounter()
        self.errors = RunningCounter()
        self.reconnects = RunningCounter()
        self.malformed = RunningCounter()
        self.backfilled = RunningCounter()
        self.quarantined: dict[str, RunningCounter] = {}
        self.quarantine: QuarantineReport | None = None
        self.poisoned = 0
        self.starter = QuestDBStarter(lambda: self.questdb.up())
        self.sim_frames_last = 0.0
        self.ack_total: list[tuple[float, float]] = []
        self.ack_last: tuple[tuple[float, float], ...] = ()
        self.samples: list[Sample] = []
        self.chaos_log: list[str] = []
        self.cpu: list[float] = []
        self.rss_max = 0.0
        self.ps: psutil.Process | None = None
        self.ps_sim: psutil.Process | None = None
        self.ps_qdb: psutil.Process | None = None
        self.sim_cpu: list[float] = []
        self.qdb_cpu: list[float] = []

    # ---- set-up ---------------------------------------------------------------------

    @property
    def questdb(self) -> QuestDBServer:
        assert self._qdb is not None, "QuestDB not started"
        return self._qdb.server

    @property
    def qs(self) -> QuestDBSettings:
        return self.questdb.settings

    @property
    def http(self) -> str:
        return self.questdb.http_url

    def start(self) -> None:
        self._qdb = ephemeral.start_questdb(self.dir / "questdb", PathsSettings().cache_dir)
        self.echo(f"loadtest: QuestDB on {self.http} ({self.dir / 'questdb'})")
        self.rig.setup()
        http_port = self.rig.collector_http_port(self.qs.host, self.qs.http_port)
        for line in self.rig.log:
            self.echo(f"loadtest: {line}")
        self.rig.log.clear()
        self.sim.start()
        self.echo(f"loadtest: simulator {self.sim.ws_url} at {self.spec.rate:g} ticker+book frames/s")
        self.collector = CollectorProcess(
            self.sim.ws_url,
            self.rig.journal_dir,
            self.dir,
            self.spec.connections,
            0,  # any free port; the collector names it in its run file
            self.qs.host,
            http_port,
            self.dir / "collector.log",
            self.extra_env,
        )
        self.collector.start()
        self.ps = proc_usage(self.collector.pid)
        self.ps_sim = proc_usage(self.sim.pid)
        self.ps_qdb = self._questdb_proc()

    def _questdb_proc(self) -> psutil.Process | None:
        p = self.questdb.pid_file.process()
        return None if p is None else proc_usage(p.pid)

    def wait_ready(self) -> None:
        assert self.collector is not None
        deadline = time.monotonic() + self.spec.ready_timeout_s
        stable = 0
        last = -1.0
        while time.monotonic() < deadline:
            if not self.collector.alive:
                raise HarnessError(f"the collector exited at start-up; see {self.collector.log}")
            m = self.collector.scrape()
            if m is not None and m.connections_up >= self.spec.connections and m.subscribed > 0:
                stable = stable + 1 if m.subscribed == last else 0
                last = m.subscribed
                if stable >= 2:
                    self.echo(f"loadtest: collector subscribed ({int(m.subscribed)} channels)")
                    return
            time.sleep(0.5)
        raise HarnessError(f"the collector did not subscribe within {self.spec.ready_timeout_s:g} s")

    # ---- sampling -------------------------------------------------------------------

    def sample(self, t_s: float, dt_s: float) -> Metrics | None:
        assert self.collector is not None
        st = self.sim.control("status")
        frames = float(st.get("frames_published", 0))
        sim_rate = max(0.0, frames - self.sim_frames_last) / dt_s
        self.sim_frames_last = frames
        m = self.collector.scrape()
        p50 = p95 = None
        rows_rate = 0.0
        if m is not None:
            before = self.stored.base + self.stored.last
            rows_rate = max(0.0, self.stored.update(m.stored_rows) - before) / dt_s
            self._account(m)
            d = bucket_delta(m.ack_buckets, self.ack_last)
            self.ack_last = m.ack_buckets
            self.ack_total = add_buckets(self.ack_total, d)
            q50, q95 = quantile(0.5, d), quantile(0.95, d)
            p50 = None if q50 is None else q50 * 1e3
            p95 = None if q95 is None else q95 * 1e3
        cpu = rss = 0.0
        if self.ps is not None:
            try:
                cpu = self.ps.cpu_percent(None)
                rss = self.ps.memory_info().rss / 1e6
            except psutil.Error:
                pass
        self.cpu.append(cpu)
        self.rss_max = max(self.rss_max, rss)
        sim_cpu = cpu_pct(self.ps_sim)
        if self.ps_qdb is None:
            self.ps_qdb = self._questdb_proc()  # restarted (questdb-restart chaos)
        qdb_cpu = cpu_pct(self.ps_qdb)
        if qdb_cpu is None:
            self.ps_qdb = None
        self.sim_cpu.append(sim_cpu or 0.0)
        self.qdb_cpu.append(qdb_cpu or 0.0)
        self.samples.append(
            Sample(
                round(t_s, 2), sim_rate, rows_rate, p50, p95, cpu, rss, m.backlog_bytes if m else 0.0,
                sim_cpu or 0.0, qdb_cpu or 0.0,
            )
        )
        return m

    # ---- chaos ----------------------------------------------------------------------

    def act(self, a: chaos.Action, t_s: float) -> bool:
        """Carry out ``a``; False: not possible yet (the caller asks again shortly)."""
        assert self.collector is not None
        if a.kind == "drop":
            conns = [c for c in self.sim.control("connections") if not c.get("closed")]
            if conns:
                victim = conns[int(t_s) % len(conns)]["id"]
                try:
                    self.sim.control("fault/drop", conn=victim)
                except HarnessError:  # it closed meanwhile (another fault, a reconnect)
                    return False
                self.chaos_log.append(f"{t_s:6.1f}s drop {victim}")
            else:
                self.chaos_log.append(f"{t_s:6.1f}s no connection open to drop")
        elif a.kind == "malformed":
            self.sim.control("fault/malformed", count=5)
            self.chaos_log.append(f"{t_s:6.1f}s malformed x5 on every connection")
        elif a.kind == "silence":
            conns = [c for c in self.sim.control("connections") if not c.get("closed")]
            if conns:
                victim = conns[0]["id"]
                self.sim.control("fault/silence", conn=victim, seconds=chaos.SILENCE_S)
                self.chaos_log.append(f"{t_s:6.1f}s silence {victim} for {chaos.SILENCE_S:g} s")
        elif a.kind == "collector_kill":
            self._kill_collector(t_s)
            self._start_collector(t_s)
        elif a.kind == "questdb_down":
            self.questdb.down()
            self.chaos_log.append(f"{t_s:6.1f}s QuestDB stopped")
        elif a.kind == "questdb_up":
            self._start_questdb(t_s)
        elif a.kind == "questdb_kill":
            if not self._kill_questdb(t_s):
                return False
        elif a.kind == "poison":
            conns = [c for c in self.sim.control("connections") if not c.get("closed")]
            if not conns:
                return False
            victim = conns[self.poisoned % len(conns)]["id"]
            try:
                self.sim.control("fault/poison", conn=victim)
            except HarnessError:  # the connection closed or is not subscribed yet: shortly again
                return False
            self.poisoned += 1
            self.chaos_log.append(f"{t_s:6.1f}s poison x4 on {victim}")
        elif a.kind in ("reject_on", "reject_off"):
            self.rig.reject(a.kind == "reject_on", t_s)
        elif a.kind == "writes_hold":
            self.rig.hold(True, t_s)
        elif a.kind == "journal_corrupt":
            done = self.rig.corrupt(t_s, lambda: self._kill_collector(t_s), lambda: self._start_collector(t_s))
            if not done:
                return False
        elif a.kind == "disk_fill":
            self.rig.fill(t_s)
        elif a.kind == "disk_release":
            self.rig.release(t_s)
        else:
            raise HarnessError(f"unknown chaos action {a.kind!r}")
        self.chaos_log.extend(self.rig.log)
        self.rig.log.clear()
        return True

    def _kill_collector(self, t_s: float) -> None:
        assert self.collector is not None
        m = self.collector.scrape()  # the last counts of this process
        if m is not None:
            self._account(m)
        self.collector.kill()
        self.chaos_log.append(f"{t_s:6.1f}s collector SIGKILL (pid {self.collector.pid})")

    def _start_collector(self, t_s: float) -> None:
        assert self.collector is not None
        self.collector.start()
        self.ps = proc_usage(self.collector.pid)
        self.chaos_log.append(f"{t_s:6.1f}s collector restarted (pid {self.collector.pid})")

    def _kill_questdb(self, t_s: float) -> bool:
        """SIGKILL QuestDB by the PID it was started with (no shutdown hook runs), then
        start it again on the same ports (``up`` clears the stale pid file). False while
        QuestDB is down or starting (``questdb-restart``): the kill waits for it."""
        if self.starter.busy:
            return False
        proc = self.questdb.pid_file.process()
        if proc is None:
            return False
        pid = proc.pid
        proc.kill()
        try:
            proc.wait(timeout=30)
        except psutil.TimeoutExpired as exc:
            raise HarnessError(f"questdb-kill: QuestDB (pid {pid}) survived SIGKILL") from exc
        self.chaos_log.append(f"{t_s:6.1f}s QuestDB SIGKILL (pid {pid})")
        self._start_questdb(t_s)
        return True

    def _start_questdb(self, t_s: float) -> None:
        """Start QuestDB again in the background (``QuestDBStarter``)."""
        self.ps_qdb = None
        self.starter.start(lambda took: self.chaos_log.append(f"{t_s:6.1f}s QuestDB started again (took {took:.1f} s)"))

    # ---- the run --------------------------------------------------------------------

    def load(self) -> tuple[float, float]:
        """The measured phase; returns (start, end) unix seconds."""
        plan = chaos.schedule(self.spec.chaos, self.spec.duration_s)
        t0 = time.time()
        self.sim_frames_last = float(self.sim.control("status").get("frames_published", 0))
        m0 = self.collector.scrape() if self.collector else None
        if m0 is not None:
            self.stored.update(m0.stored_rows)
            self.errors.update(m0.flush_errors)
            self.ack_last = m0.ack_buckets
        for ps in (self.ps, self.ps_sim, self.ps_qdb):
            cpu_pct(ps)  # start the CPU counters at the start of the load
        last = t0
        next_tick = t0 + 1.0
        while True:
            now = time.time()
            while plan and plan[0].at_s <= now - t0:
                a = plan.pop(0)
                if not self.act(a, now - t0):
                    plan.append(chaos.Action(now - t0 + self.rig.retry_after_s(), a.kind))
                    plan.sort()
                    break
            if now >= next_tick:
                self.sample(now - t0, now - last)
                last = now
                next_tick += 1.0
                if len(self.samples) % 30 == 0:
                    s = self.samples[-1]
                    self.echo(
                        f"  t={s.t_s:5.0f}s sim {s.sim_frames_per_s:8.0f} frames/s stored {s.stored_rows_per_s:8.0f} "
                        f"rows/s p95 {s.p95_ms if s.p95_ms is None else round(s.p95_ms, 1)} ms "
                        f"cpu {s.collector_cpu_pct:5.1f}% rss {s.collector_rss_mb:6.1f} MB "
                        f"(sim {s.sim_cpu_pct:4.0f}%, QuestDB {s.questdb_cpu_pct:4.0f}%)"
                    )
            if now - t0 >= self.spec.duration_s:
                for a in plan:
                    self.chaos_log.append(f"{now - t0:6.1f}s NOT DONE: {a.kind} (due at {a.at_s:.1f} s)")
                if self.rig.proxy is not None:
                    self.rig.proxy.hold = False
                break
            if self.collector is not None and not self.collector.alive:
                raise HarnessError(f"the collector died; see {self.collector.log}")
            time.sleep(min(0.2, max(0.0, next_tick - time.time())))
        return t0, time.time()

    def quiesce(self) -> int:
        """Drop to a trickle, wait until the collector holds almost nothing unacknowledged;
        return cutoff_us. (Not rate 0: silent sockets would trip the stale watchdog.)"""
        assert self.collector is not None
        self.starter.wait()
        self.sim.control("rate", per_s=min(self.spec.rate, QUIESCE_RATE))
        deadline = time.monotonic() + self.spec.drain_timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            time.sleep(1.0)
            m = self.collector.scrape()
            if m is None:
                continue
            self._account(m)
            done = (
                m.buffered_rows < 5_000 and m.backlog_bytes < 2_000_000 and m.connections_up >= self.spec.connections
            )
            quiet = quiet + 1 if done else 0
            if quiet >= 3:
                break
        else:
            self.echo("loadtest: WARNING the collector did not drain within the timeout")
        cutoff_us = int((time.time() - 2.0) * 1e6)
        self.collector.stop()
        return cutoff_us

    def _account(self, m: Metrics) -> None:
        self.errors.update(m.flush_errors)
        self.reconnects.update(m.reconnects)
        self.malformed.update(m.malformed)
        self.backfilled.update(m.backfilled)
        for reason, v in m.quarantined:
            self.quarantined.setdefault(reason, RunningCounter()).update(v)
        # latency figures cover the load phase only (drain-time batches carry gap and
        # backfill rows whose timestamps are the past)

    def export(self, cutoff_us: int, start_us: int) -> tuple[Path, Path]:
        exp = self.dir / "export"
        self.sim.control("sendlog/export", dir=str(exp.resolve()))
        stored = self.dir / "stored"
        stored.mkdir()
        self._wait_wal()
        h = self.http
        questdb_export_csv(h, "SELECT instrument, cast(ts AS long) ts_us FROM quotes", stored / "quotes.csv")
        questdb_export_csv(
            h,
            "SELECT DISTINCT instrument, cast(ts AS long) ts_us, change_id FROM book_changes",
            stored / "book_changes.csv",
        )
        questdb_export_csv(h, "SELECT index_name, cast(ts AS long) ts_us FROM index_ticks", stored / "index_ticks.csv")
        questdb_export_csv(
            h, "SELECT instrument, trade_id, cast(ts AS long) ts_us, source FROM trades", stored / "trades.csv"
        )
        questdb_export_csv(
            h,
            "SELECT cast(ts AS long) ts_us, cast(end_ts AS long) end_us, instrument, kind FROM gaps",
            stored / "gaps.csv",
        )
        part_bytes = 0
        for t in _TABLES_COUNTED:
            n = questdb_scalar(h, f"SELECT count() FROM {t}")
            (stored / f"{t}_count.txt").write_text(str(int(n or 0)))
            part_bytes += int(questdb_scalar(h, f"SELECT sum(diskSize) FROM table_partitions('{t}')") or 0)
        (stored / "partition_bytes.txt").write_text(str(part_bytes))
        self._history(stored / "history.csv", start_us, cutoff_us + 5_000_000)
        self.quarantine = self.rig.quarantine(stored)
        return exp, stored

    def _wait_wal(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = questdb_scalar(
                self.http,
                "SELECT count() FROM wal_tables() WHERE suspended OR writerTxn < sequencerTxn",
            )
            if rows == 0:
                return
            time.sleep(0.5)
        raise HarnessError("QuestDB did not apply its WAL in time")

    def _history(self, dest: Path, start_us: int, end_us: int) -> None:
        """Every trade the simulator generated in the window, from its history API."""
        start_ms = start_us // 1000
        end_ms = end_us // 1000
        with open(dest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["instrument", "trade_id", "ts_us"])
            while start_ms <= end_ms:
                res = self.sim.api(
                    "get_last_trades_by_currency_and_time",
                    currency="any",
                    kind="any",
                    start_timestamp=start_ms,
                    end_timestamp=end_ms,
                    count=1000,
                    sorting="asc",
                )
                trades = res.get("trades", [])
                for t in trades:
                    w.writerow([t["instrument_name"], t["trade_id"], int(t["timestamp"]) * 1000])
                if not res.get("has_more") or not trades:
                    break
                nxt = int(trades[-1]["timestamp"])
                start_ms = nxt if nxt > start_ms else start_ms + 1

    def stop_all(self) -> None:
        try:
            with contextlib.suppress(HarnessError):
                self.starter.wait()
            if self.collector is not None:
                self.collector.stop()
            self.sim.stop()
            if self._qdb is not None:
                self._qdb.server.down()
        finally:
            self.starter.close()
            self.rig.close()


def run(spec: LoadSpec, echo: Any = print) -> Result:
    modes = chaos.validate(spec.chaos, spec.duration_s)
    spec = dataclasses.replace(spec, chaos=modes)
    r = _Run(spec, echo)
    try:
        r.start()
        r.wait_ready()
        start = time.time()
        t0, t1 = r.load()
        echo(f"loadtest: quiescing ({QUIESCE_RATE:g} frames/s while the collector drains)")
        cutoff_us = r.quiesce()
        exp, stored = r.export(cutoff_us, int(start * 1e6) + 500_000)
        recon = reconcile(exp, stored, cutoff_us, cutoff_us - 1_000_000, int(start * 1e6) + 500_000)
        closes = closes_before(exp / "connections.json", cutoff_us)
        unc = uncovered_disconnects(closes, gap_windows(stored / "gaps.csv"))
        recon = Reconciliation(recon.tables, recon.trades_backfilled, tuple(str(c) for c in unc))
        q = r.quarantine
        rate = frames_sent(exp, int(t0 * 1e6), int(t1 * 1e6)) / (t1 - t0)
        total_rows = sum(int((stored / f"{t}_count.txt").read_text()) for t in _TABLES_COUNTED)
        qdb_bytes = dir_size_bytes(r.dir / "questdb" / "db")
        part_bytes = int((stored / "partition_bytes.txt").read_text())
        stored_delta = sum(s.stored_rows_per_s for s in r.samples)
        lat = {
            "p50": to_ms(quantile(0.5, r.ack_total)),
            "p95": to_ms(quantile(0.95, r.ack_total)),
            "p99": to_ms(quantile(0.99, r.ack_total)),
            "max": to_ms(max_bound(r.ack_total)),
        }
        cpu = mean_after_first(r.cpu)
        res = Result(
            spec=spec,
            recon=recon,
            write_errors=int(r.errors.base + r.errors.last),
            rate_achieved=rate,
            latency_ms=lat,
            collector_cpu_pct=cpu,
            collector_rss_mb=r.rss_max,
            duration_s=t1 - t0,
            sim_cpu_pct=mean_after_first(r.sim_cpu),
            questdb_cpu_pct=mean_after_first(r.qdb_cpu),
            bytes_per_row=(part_bytes / total_rows) if part_bytes and total_rows else None,
            questdb_bytes=qdb_bytes,
            rows_per_s=stored_delta / max(1.0, t1 - t0),
            reconnects=int(r.reconnects.base + r.reconnects.last),
            malformed_frames=int(r.malformed.base + r.malformed.last),
            backfilled=recon.trades_backfilled,
            collector_starts=r.collector.starts if r.collector else 0,
            load_avg=psutil.getloadavg(),
            gap_rows=int((stored / "gaps_count.txt").read_text()),
            chaos_log=r.chaos_log,
            samples=r.samples,
            quarantined=dict(q.items) if q is not None else {},
            quarantined_counted={k: int(c.base + c.last) for k, c in sorted(r.quarantined.items()) if c.base + c.last},
            quarantine_unresolved=list(q.unresolved) if q is not None else [],
        )
        write_samples(r.dir / "samples.csv", r.samples)
        return res
    finally:
        r.stop_all()

