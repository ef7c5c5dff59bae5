"""``tickarchive demo`` (``make demo``): the whole pipeline offline.

1. ``up``: the local stack (QuestDB + PostgreSQL), migrated;
2. the Deribit-compatible simulator (``tickarchive sim``, a subprocess);
3. the collector against it (``tickarchive collect --simulator URL``, a subprocess,
   journal under ``<paths.local_dir>/journal-demo`` so it never mixes with a live run);
4. the API (``tickarchive api``);

then prints where to look and waits. With ``--days N`` (``make demo DAYS=N``) the
simulator first generates N past days and the last day of the month before them, fast,
and the demo takes them through the lifecycle — sealed, rolled over to the warm store,
the closed month archived and verified, its warm copy dropped — and shows one API query
answered from each tier: cold, warm and hot (``tickarchive/ops/demo_tiers.py``).

Ctrl-C (or SIGTERM) stops every process it started, in reverse order (SIGTERM, then
SIGKILL after a grace period), and the stack too if the demo started it; then it says what
is still running (a stack that was up before the demo, other commands) and how to stop it.
Before starting anything it checks the ports it will use (simulator, API, the collector's
metrics) and names the flag to change for one that is taken (a second demo, say).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer

from tickarchive import native_ext
from tickarchive.ops.demo_tiers import PastPlan, TierAnswer
from tickarchive.ops.errors import DemoError
from tickarchive.settings import Settings

TA = str(Path(sys.executable).parent / "tickarchive")


def register(app: typer.Typer) -> None:
    app.command(
        "demo", help="Stack + simulator + collector + API, offline; --days N adds past days through rollover and "
        "archive (answers from all three tiers); Ctrl-C stops everything.",
    )(demo)


def _wait_ready(proc: subprocess.Popen[str], stream: IO[str] | None, what: str, timeout_s: float) -> str:
    """The first line of ``stream`` starting with 'ready ' (the simulator prints its URL)."""
    assert stream is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            if proc.poll() is not None:
                raise DemoError(f"{what} exited with status {proc.returncode} before it was ready")
            continue
        if line.startswith("ready "):
            return line.split(" ", 1)[1].strip()
    raise DemoError(f"{what} was not ready within {timeout_s:g} s")


def _stop(name: str, proc: subprocess.Popen[str], grace_s: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        typer.echo(f"demo: {name} did not stop within {grace_s:g} s; killing pid {proc.pid}", err=True)
        proc.kill()
        proc.wait()


def _check_ports(ports: list[tuple[str, str, int, str]]) -> None:
    """(what, host, port, flag and setting to change): a taken one is a ``DemoError`` naming them."""
    from tickarchive.store.stack.procs import port_conflict, port_is_free

    for what, host, port, change in ports:
        if not port_is_free(host, port):
            raise DemoError(f"{what}: {port_conflict(host, port, change)} (another demo? `tickarchive status`)")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _sim_status(http: str) -> dict[str, object]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{http}/control/status", timeout=10) as r:  # the demo's own simulator
        data: dict[str, object] = json.loads(r.read())
        return data


def _watch(procs: list[tuple[str, subprocess.Popen[str]]]) -> None:
    for name, p in procs:
        if p.poll() is not None:
            raise DemoError(f"{name} exited with status {p.returncode}; stopping the demo")


def _wait_past(http: str, plan_days: int, past_speed: float, procs: list[tuple[str, subprocess.Popen[str]]]) -> None:
    """Until the simulator's clock has joined the wall clock (every past day generated)."""
    from tickarchive.loadtest.sim.clock import DAY_MS

    deadline = time.monotonic() + plan_days * DAY_MS / past_speed / 1000 + 120
    while _sim_status(http).get("in_past", False):
        _watch(procs)
        if time.monotonic() > deadline:
            raise DemoError("the simulator did not finish the past days in time")
        time.sleep(1.0)  # polling the simulator's clock


def _lifecycle(s: Settings, past: PastPlan, api_url: str, say: Callable[[str], None]) -> list[TierAnswer]:
    from tickarchive.ops import demo_tiers as dt_

    say(f"demo: 1/5 waiting for the {len(past.days)} past days to be sealed (tickarchive rollover --dry-run) ...")
    sealed = dt_.wait_sealed(s, past, 180.0, say)
    say(f"demo: 2/5 rolling {len(sealed)} sealed days over into the warm store (tickarchive rollover) ...")
    dt_.roll_over(s, say)
    if past.cold_day in sealed:
        month = past.cold_month
        say(f"demo: 3/5 archiving the closed month {month} (tickarchive archive export --month {month}; "
            f"archive verify --month {month}) ...")
        dt_.archive_month(s, month, say)
        say(f"demo: 4/5 dropping {month} from the warm store now that its archive verified "
            "(what tickarchive warm-retention does after lifecycle.warm_retention_months) ...")
        dt_.drop_warm_month(s, month, say)
    else:
        say(f"demo: 3/5, 4/5 skipped: {past.cold_day} is not sealed, so there is nothing to archive")
    say("demo: 5/5 asking the API for a day of each tier ...")
    return dt_.check_tiers(s, api_url, past, sealed)


def demo(
    days: Annotated[
        int, typer.Option(help="also generate N past days (and the last day of the month before them) and take "
                          "them through rollover and archive: answers from all three tiers. 0 = live only")
    ] = 0,
    past_speed: Annotated[float, typer.Option(help="with --days: simulated seconds per second (1440 = a day a "
                                              "minute)")] = 1440.0,
    rate: Annotated[float, typer.Option(help="simulator ticker+book frames per second")] = 2000.0,
    instruments: Annotated[int, typer.Option(help="options in the simulated chain")] = 400,
    sim_port: Annotated[int | None, typer.Option(help="simulator port (default: simulator.port)")] = None,
    api_port: Annotated[int | None, typer.Option(help="API port (default: api.port)")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="the collector's metrics port (default: metrics.port)")
    ] = None,
    keep_stack: Annotated[bool, typer.Option(help="leave QuestDB/PostgreSQL running on exit")] = False,
) -> None:
    import contextlib
    import datetime as dt

    from tickarchive.ops.demo_tiers import day_ms, plan_past, wait_stored
    from tickarchive.settings import load_settings
    from tickarchive.store.stack.running import left_running, registered
    from tickarchive.store.stack.stack import Stack
    from tickarchive.store.stack.status import Action

    s = load_settings()
    port = sim_port if sim_port is not None else s.simulator.port
    a_port = api_port if api_port is not None else s.api.port
    m_port = metrics_port if metrics_port is not None else s.metrics.port
    if past_speed <= 0:
        raise DemoError(f"--past-speed {past_speed:g}: must be > 0")
    past = plan_past(dt.datetime.now(dt.UTC).date(), days) if days else None
    _check_ports([
        ("simulator", s.simulator.host, port, "choose another with --sim-port N (or setting simulator.port)"),
        ("API", s.api.host, a_port, "choose another with --api-port N (or setting api.port)"),
        ("collector metrics", s.metrics.host, m_port, "choose another with --metrics-port N (or setting metrics.port)"),
    ])
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    started_stack = False
    stack = Stack(s)
    # Ctrl-C and SIGTERM end the demo's main loop (set explicitly: a shell may start us with SIGINT ignored)
    old = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    cleanup = contextlib.ExitStack()
    try:
        typer.echo("demo: starting the local stack (QuestDB, PostgreSQL) ...")
        report = stack.up(run_migrations=True)
        started_stack = any(a.action is Action.STARTED for a in report.actions)
        for a in report.actions:
            typer.echo(f"  {a.name}: {a.action.value}")
        cleanup.enter_context(registered(
            s.paths.local_dir, "demo", "127.0.0.1", {},
            "Ctrl-C stops its simulator, collector and API (and the stack it started)",
        ))
        sim_args = [TA, "sim", "--port", str(port), "--rate", str(rate), "--instruments", str(instruments)]
        if past is not None:
            sim_args += [arg for d in past.days for arg in ("--past-day", d.isoformat())]
            sim_args += ["--past-speed", str(past_speed), "--start-ms", str(day_ms(past.days[0]))]
            minutes = len(past.days) * 86_400 / past_speed / 60
            typer.echo(
                f"demo: past days: {past.cold_day} (its month {past.cold_month} will be archived: cold), "
                f"{', '.join(str(d) for d in past.warm_days)} (warm), then today live (hot); generated at "
                f"{past_speed:g}x, about {minutes:.1f} min"
            )
        sim = subprocess.Popen(sim_args, stdout=subprocess.PIPE, text=True)
        procs.append(("simulator", sim))
        ws_url = _wait_ready(sim, sim.stdout, "the simulator", 60)
        journal = s.paths.local_dir / "journal-demo"
        collector = subprocess.Popen(
            [TA, "collect", "--simulator", ws_url, "--journal-dir", str(journal), "--metrics-port", str(m_port),
             "--no-exit-report"],
            text=True,
        )
        procs.append(("collector", collector))
        api = subprocess.Popen([TA, "api", "--port", str(a_port)], text=True)
        procs.append(("api", api))
        api_url = f"http://{s.api.host}:{a_port}"
        http = ws_url.replace("ws://", "http://").replace("/ws/api/v2", "")
        answers = []
        if past is not None:
            _wait_past(http, len(past.days), past_speed, procs)
            _watch(procs)
            typer.echo("demo: past days generated; waiting for the collector to store them ...")
            wait_stored(s, time.time_ns() // 1000 + 5_000_000, 180.0)
            answers = _lifecycle(s, past, api_url, typer.echo)
        _banner(s, ws_url, http, api_url, m_port, journal, answers)
        while True:
            _watch(procs)
            time.sleep(0.5)  # the demo's main loop: watch the children until Ctrl-C
    except KeyboardInterrupt:
        typer.echo("demo: stopping ...")
    finally:
        for name, p in reversed(procs):
            _stop(name, p)
        if started_stack and not keep_stack:
            stack.down()
            typer.echo("demo: stack stopped")
        cleanup.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for line in left_running(s):
            typer.echo(f"demo: {line}")
    typer.echo("demo: stopped")


def _banner(s: Settings, ws_url: str, http: str, api_url: str, m_port: int, journal: Path,
            answers: list[TierAnswer]) -> None:
    q = s.questdb
    typer.echo("")
    typer.echo("tickarchive demo is running (Ctrl-C stops everything it started):")
    typer.echo(f"  parsing           {native_ext.status()}")
    typer.echo(f"  QuestDB console   http://{q.host}:{q.http_port}/   (try: SELECT * FROM quotes LIMIT 10)")
    typer.echo(f"  metrics           http://{s.metrics.host}:{m_port}/metrics")
    typer.echo(f"  API               {api_url}/docs   health: {api_url}/health")
    typer.echo(f"  simulator         {ws_url}   control: {http}/control/status")
    typer.echo(f"  inject a fault    curl '{http}/control/fault/drop'   (then look at the gaps table)")
    typer.echo(f"  journal           {journal}   (tickarchive journal ls --dir {journal})")
    if answers:
        where = {"cold": f"Parquet in the archive ({s.archive.target})", "warm": "the warm store (PostgreSQL)",
                 "hot": "QuestDB"}
        typer.echo("  one day of each tier, answered by the API:")
        for a in answers:
            typer.echo(f"    {a.tier:<5} {a.day}  from {where[a.tier]}: {a.rows} trades, the first {a.first}")
            typer.echo(f"          curl -s '{a.url}'")
        report_day = next((a.day for a in answers if a.tier == "warm"), answers[-1].day)
        typer.echo("  also: tickarchive archive ls; tickarchive rollover --status; "
                   f"tickarchive report quality --day {report_day} --out .local/reports")
    typer.echo("")
