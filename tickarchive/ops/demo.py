"""``tickarchive demo`` (``make demo``): the whole pipeline offline.

1. ``up``: the local stack (QuestDB + PostgreSQL), migrated;
2. the Deribit-compatible simulator (``tickarchive sim``, a subprocess);
3. the collector against it (``tickarchive collect --simulator URL``, a subprocess,
   journal under ``<paths.local_dir>/journal-demo`` so it never mixes with a live run);
4. the API (``tickarchive api``) when ``tickarchive/cli/api.py`` exists;

then prints where to look and waits. Ctrl-C (or SIGTERM) stops every process it started,
in reverse order (SIGTERM, then SIGKILL after a grace period), and the stack too if the
demo started it; then it says what is still running (a stack that was up before the demo,
other commands) and how to stop it.

Before starting anything it checks the ports it will use (simulator, API, the collector's
metrics) and names the flag to change for one that is taken (a second demo, say).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Annotated

import typer

from tickarchive import native_ext
from tickarchive.ops.errors import DemoError

TA = str(Path(sys.executable).parent / "tickarchive")


def register(app: typer.Typer) -> None:
    app.command("demo", help="Stack + simulator + collector (+ API), offline; Ctrl-C stops everything.")(demo)


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


def demo(
    rate: Annotated[float, typer.Option(help="simulator ticker+book frames per second")] = 2000.0,
    instruments: Annotated[int, typer.Option(help="options in the simulated chain")] = 400,
    sim_port: Annotated[int | None, typer.Option(help="simulator port (default: simulator.port)")] = None,
    api_port: Annotated[int | None, typer.Option(help="API port (default: api.port)")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="the collector's metrics port (default: metrics.port)")
    ] = None,
    keep_stack: Annotated[bool, typer.Option(help="leave QuestDB/PostgreSQL running on exit")] = False,
) -> None:
    from tickarchive.settings import load_settings
    from tickarchive.store.stack.running import left_running, registered
    from tickarchive.store.stack.stack import Stack
    from tickarchive.store.stack.status import Action

    s = load_settings()
    port = sim_port if sim_port is not None else s.simulator.port
    a_port = api_port if api_port is not None else s.api.port
    m_port = metrics_port if metrics_port is not None else s.metrics.port
    _check_ports([
        ("simulator", s.simulator.host, port, "choose another with --sim-port N (or setting simulator.port)"),
        ("API", s.api.host, a_port, "choose another with --api-port N (or setting api.port)"),
        ("collector metrics", s.metrics.host, m_port, "choose another with --metrics-port N (or setting metrics.port)"),
    ])
    typer.echo("demo: starting the local stack (QuestDB, PostgreSQL) ...")
    stack = Stack(s)
    report = stack.up(run_migrations=True)
    started_stack = any(a.action is Action.STARTED for a in report.actions)
    for a in report.actions:
        typer.echo(f"  {a.name}: {a.action.value}")
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    stop_requested = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    registration = registered(s.paths.local_dir, "demo", "127.0.0.1", {},
                              "Ctrl-C stops its simulator, collector and API (and the stack it started)")
    registration.__enter__()
    try:
        sim = subprocess.Popen(
            [TA, "sim", "--port", str(port), "--rate", str(rate), "--instruments", str(instruments)],
            stdout=subprocess.PIPE, text=True,
        )
        procs.append(("simulator", sim))
        ws_url = _wait_ready(sim, sim.stdout, "the simulator", 60)
        journal = s.paths.local_dir / "journal-demo"
        collector = subprocess.Popen(
            [TA, "collect", "--simulator", ws_url, "--journal-dir", str(journal), "--metrics-port", str(m_port)],
            text=True,
        )
        procs.append(("collector", collector))
        api = subprocess.Popen([TA, "api", "--port", str(a_port)], text=True)
        procs.append(("api", api))
        api_url = f"http://{s.api.host}:{a_port}"
        q = s.questdb
        http = ws_url.replace("ws://", "http://").replace("/ws/api/v2", "")
        typer.echo("")
        typer.echo("tickarchive demo is running (Ctrl-C stops everything it started):")
        typer.echo(f"  parsing           {native_ext.status()}")
        typer.echo(f"  QuestDB console   http://{q.host}:{q.http_port}/   (try: SELECT * FROM quotes LIMIT 10)")
        typer.echo(f"  metrics           http://{s.metrics.host}:{m_port}/metrics")
        typer.echo(f"  API               {api_url}/docs   health: {api_url}/health")
        typer.echo(f"  simulator         {ws_url}   control: {http}/control/status")
        typer.echo(f"  inject a fault    curl '{http}/control/fault/drop'   (then look at the gaps table)")
        typer.echo(f"  journal           {journal}   (tickarchive journal ls --dir {journal})")
        typer.echo("")
        while not stop_requested:
            for name, p in procs:
                if p.poll() is not None:
                    raise DemoError(f"{name} exited with status {p.returncode}; stopping the demo")
            time.sleep(0.5)
        typer.echo("demo: stopping ...")
    finally:
        for name, p in reversed(procs):
            _stop(name, p)
        if started_stack and not keep_stack:
            stack.down()
            typer.echo("demo: stack stopped")
        registration.__exit__(None, None, None)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for line in left_running(s):
            typer.echo(f"demo: {line}")
    typer.echo("demo: stopped")
