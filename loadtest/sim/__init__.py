"""A Deribit-compatible exchange simulator with replay, faults and exact send accounting.

Run it as ``tickarchive sim`` or in-process::

    async with Simulator(SimConfig(seed=7, rate_per_s=5000)) as sim:
        ... connect to sim.ws_url, fetch f"{sim.http_url}/public/get_instruments" ...
        sim.inject("silence", conn="c1", seconds=2)
        sim.send_log.keys("quotes")        # what was sent, by archive dedup keys

Module layout (pure parts first; only ``server``, ``connection`` and ``http`` do I/O):

* ``config``     ``SimConfig``: every knob, frozen, units in names.
* ``black76``    option values, greeks and the volatility smile.
* ``chain``      instruments, expiry schedule (daily/weekly/monthly/quarterly), names.
* ``market``     ``MarketModel``: index walk, repricing, books, trades, listings and
                 expiries; ``step(now_ms)`` -> events, deterministic from the seed.
* ``encode``     events -> Deribit JSON frames (bytes) and send-log records.
* ``channels``   channel-name validation (``raw`` refused, unknown channels).
* ``rpc``        JSON-RPC: public methods (shared with HTTP) and the per-connection
                 ``Session`` (subscribe limits, rate limit, heartbeat state).
* ``history``    every generated trade, paged like history.deribit.com.
* ``faults``     fault specs (CLI/HTTP/Python) and fault records.
* ``sendlog``    ``SendLog``: per-connection sent/unsent keys, spooled to Parquet.
* ``replay``     capture parsing for ``--replay``.
* ``catalog``    the live market as the public methods see it.
* ``connection`` one client socket: bounded queue, batch writer, connection faults.
* ``http``       plain HTTP GET: ``/api/v2/...`` and ``/control/...``.
* ``server``     ``Simulator``: the asyncio server and its owned tasks.
* ``bench``      ``tickarchive bench sim``.

See docs/simulator.md.
"""

from __future__ import annotations

from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.faults import FaultRecord, FaultSpec, parse_fault_spec
from tickarchive.loadtest.sim.sendlog import SendLog
from tickarchive.loadtest.sim.server import Simulator

__all__ = ["FaultRecord", "FaultSpec", "SendLog", "SimConfig", "Simulator", "parse_fault_spec"]
