"""``tickarchive sim``: the Deribit-compatible simulator."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tickarchive.loadtest.errors import SimConfigError, SimServerError


def register(app: typer.Typer) -> None:
    app.command("sim", help="Run the Deribit-compatible simulator (prints 'ready ws://...' when listening).")(sim)


def sim(
    host: Annotated[str | None, typer.Option(help="listen address (default: settings simulator.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port; 0 = any free port (default: settings simulator.port)")] = None,
    seed: Annotated[int, typer.Option(help="random seed of the market model")] = 1,
    rate: Annotated[float, typer.Option(help="ticker+book notifications per second over the chain")] = 2000.0,
    instruments: Annotated[int, typer.Option(help="approximate number of options listed per currency")] = 800,
    currencies: Annotated[str, typer.Option(help="currencies listed, comma-separated: ETH, BTC")] = "ETH",
    kinds: Annotated[
        str, typer.Option(help="kinds listed, comma-separated: option, future (dated + perpetual), option_combo")
    ] = "option",
    combos: Annotated[int, typer.Option(help="option combos per currency (with kind option_combo)")] = 8,
    trades_per_s: Annotated[float, typer.Option(help="trades per second")] = 5.0,
    time_scale: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 1.0,
    start_ms: Annotated[int | None, typer.Option(help="simulated clock at start (ms); default now")] = None,
    spot: Annotated[
        float | None, typer.Option(help="initial index price of the first currency, USD (default ETH 3000, BTC 90000)")
    ] = None,
    burst_every_s: Annotated[float, typer.Option(help="0 = no bursts")] = 0.0,
    burst_duration_s: Annotated[float, typer.Option()] = 1.0,
    burst_multiplier: Annotated[float, typer.Option()] = 5.0,
    min_interval_ms: Annotated[int, typer.Option(help="min spacing per channel (100ms channels)")] = 100,
    heartbeat_scale: Annotated[float, typer.Option(help="wall seconds per heartbeat second")] = 1.0,
    send_queue_frames: Annotated[
        int, typer.Option(help="per-connection queue bound (then connection_too_slow)")
    ] = 200_000,
    replay: Annotated[Path | None, typer.Option(help="serve this capture instead of the model")] = None,
    replay_speed: Annotated[float, typer.Option(help="1 = original timing, 0 = as fast as possible")] = 1.0,
    replay_interval: Annotated[
        str, typer.Option(help="rewrite '.raw' channels to this interval; 'keep' = don't")
    ] = "100ms",
    sendlog_dir: Annotated[
        Path | None, typer.Option(help="spool directory of the send log (default: a temp dir)")
    ] = None,
    export_dir: Annotated[Path | None, typer.Option(help="export the send log here on exit")] = None,
    fault: Annotated[
        list[str] | None, typer.Option(help="KIND[:k=v,...][@SECONDS], repeatable; see docs/simulator.md")
    ] = None,
    past_day: Annotated[
        list[str] | None,
        typer.Option(metavar="YYYY-MM-DD", help="generate this past UTC day first (repeatable, in order), "
                     "then join the wall clock; see docs/simulator.md"),
    ] = None,
    past_speed: Annotated[float, typer.Option(help="simulated ms per wall ms while generating past days")] = 1440.0,
) -> None:
    from tickarchive.loadtest.sim import SimConfig, parse_fault_spec
    from tickarchive.settings import load_settings

    all_settings = load_settings()
    settings = all_settings.simulator
    try:
        config = SimConfig(
            host=host if host is not None else settings.host,
            port=port if port is not None else settings.port,
            seed=seed,
            rate_per_s=rate,
            instruments=instruments,
            currencies=tuple(x.strip() for x in currencies.split(",") if x.strip()),
            kinds=tuple(x.strip() for x in kinds.split(",") if x.strip()),
            combos=combos,
            trades_per_s=trades_per_s,
            time_scale=time_scale,
            start_ms=start_ms,
            spot_usd=spot,
            burst_every_s=burst_every_s,
            burst_duration_s=burst_duration_s,
            burst_multiplier=burst_multiplier,
            min_interval_ms=min_interval_ms,
            heartbeat_scale=heartbeat_scale,
            send_queue_frames=send_queue_frames,
            replay_file=replay,
            replay_speed=replay_speed,
            replay_interval=None if replay_interval == "keep" else replay_interval,
            sendlog_dir=sendlog_dir,
            faults=tuple(parse_fault_spec(f) for f in fault or ()),
            past_days_ms=tuple(_day_ms(d) for d in past_day or ()),
            past_speed=past_speed,
        )
    except TypeError as exc:
        raise SimConfigError(str(exc)) from exc
    run_blocking(config, export_dir, all_settings.paths.local_dir)


def _day_ms(text: str) -> int:
    import datetime as dt

    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise SimConfigError(f"--past-day {text!r}: expected YYYY-MM-DD") from None
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1000


def _listen_error(exc: SimServerError, host: str, port: int) -> SimConfigError | None:
    """A port another process holds, as one line naming the flag and the setting to change."""
    import errno

    from tickarchive.store.stack.procs import port_conflict

    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        change = "choose another with --port N (demo: --sim-port N) or setting simulator.port " \
                 "(TICKARCHIVE_SIMULATOR__PORT)"
        return SimConfigError(f"simulator: {port_conflict(host, port, change)}")
    return None


def run_blocking(config: object, export_dir: Path | None, local_dir: Path | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then flush (and export) the send log. With ``local_dir``,
    the simulator is listed by ``tickarchive status`` while it runs."""
    import contextlib

    import uvloop

    from tickarchive.loadtest.sim import SimConfig, Simulator
    from tickarchive.store.stack.running import registered

    assert isinstance(config, SimConfig)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with Simulator(config) as simulator:
                print(f"ready {simulator.ws_url}", flush=True)
                print(
                    f"http {simulator.http_url} control {simulator.control_url} "
                    f"sendlog {simulator.send_log.directory}",
                    file=sys.stderr,
                    flush=True,
                )
                port = int(simulator.ws_url.split(":")[2].split("/")[0])
                with (
                    registered(local_dir, "simulator", config.host, {"ws+http": port}, simulator.ws_url)
                    if local_dir is not None else contextlib.nullcontext()
                ):
                    await stop.wait()
        except SimServerError as exc:
            conflict = _listen_error(exc, config.host, config.port)
            if conflict is not None:
                raise conflict from None
            raise
        if export_dir is not None:
            paths = simulator.export_send_log(export_dir)
            print(f"send log exported to {export_dir} ({len(paths)} files)", file=sys.stderr, flush=True)

    uvloop.run(main())


