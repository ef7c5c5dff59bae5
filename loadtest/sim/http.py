"""Plain HTTP GET on the simulator's port: the public API and the control interface.

``/api/v2/public/<method>?k=v...``  the public methods of ``loadtest.sim.rpc.PublicApi``
(get_instruments, get_time, the history trades methods, ...), answered in Deribit's
HTTP shape ``{"jsonrpc":"2.0","result":...,"usIn":...,"usOut":...,"usDiff":...,"testnet":...}``
(errors: HTTP 400 and an ``error`` object).

``/control/...`` (JSON out):

=====================================  ==================================================
``/control/status``                    mode, connections, counters, model state
``/control/connections``               the open connections (ids ``c1``, ``c2``, ...)
``/control/fault/<kind>?k=v``          inject a fault now (see ``loadtest.sim.faults``);
                                       returns its record
``/control/faults``                    every injected fault with its window
``/control/rate?per_s=N``              change the ticker+book rate
``/control/sendlog/summary``           counts (``?per_instrument=true`` for per-instrument
                                       counts and trade_seq ranges)
``/control/sendlog/flush``             spool buffered rows to Parquet parts
``/control/sendlog/export?dir=PATH``   write the Parquet export into PATH
=====================================  ==================================================
"""

from __future__ import annotations

import http
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

from tickarchive.loadtest.errors import LoadtestError, RpcError
from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.connection import Connection
from tickarchive.loadtest.sim.faults import FAULT_KINDS, FaultRecord, FaultSpec
from tickarchive.loadtest.sim.rpc import PublicApi, now_us
from tickarchive.loadtest.sim.sendlog import SendLog


class Simulator(Protocol):
    """What the HTTP side uses of ``server.Simulator`` (a protocol: no module cycle)."""

    config: SimConfig
    api: PublicApi
    connections: dict[str, Connection]
    send_log: SendLog

    def status(self) -> dict[str, Any]: ...

    def inject(self, spec: FaultSpec | str, **params: object) -> FaultRecord: ...

    def set_rate(self, rate_per_s: float) -> None: ...

    def export_send_log(self, dest: Path) -> dict[str, str]: ...


def _response(status: int, body: bytes) -> Response:
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _json(status: int, payload: Any) -> Response:
    return _response(status, orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS))


def handle_http(sim: Simulator, target: str) -> Response:
    path, _, query = target.partition("?")
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if path.startswith("/api/v2/"):
        return _api(sim, path[len("/api/v2/") :], params)
    if path.startswith("/control/"):
        try:
            return _json(200, _control(sim, path[len("/control/") :], params))
        except LoadtestError as exc:
            return _json(400, {"error": str(exc)})
    return _json(404, {"error": f"no such path {path}"})


def _api(sim: Simulator, method: str, params: dict[str, Any]) -> Response:
    us_in = now_us()
    testnet = sim.config.testnet
    if method not in sim.api.HTTP_METHODS:
        body = encode.error_response(None, -32601, "Method not found", None, us_in, now_us(), testnet)
        return _response(400, body.replace(b'"id":null,', b""))
    try:
        result = sim.api.call(method, params)
    except RpcError as exc:
        body = encode.error_response(None, exc.code, exc.message, exc.data, us_in, now_us(), testnet)
        return _response(400, body.replace(b'"id":null,', b""))
    body = encode.response(None, result, us_in, now_us(), testnet)
    return _response(200, body.replace(b'"id":null,', b""))


def _control(sim: Simulator, action: str, params: dict[str, Any]) -> Any:
    if action == "status":
        return sim.status()
    if action == "connections":
        return [c.info() for c in sim.connections.values() if not c.closed]
    if action == "faults":
        return [f.as_dict() for f in sim.send_log.faults]
    if action.startswith("fault/"):
        kind = action[len("fault/") :]
        if kind not in FAULT_KINDS:
            raise LoadtestError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        return sim.inject(FaultSpec(kind, params)).as_dict()
    if action == "rate":
        try:
            rate = float(params.get("per_s", ""))
        except ValueError:
            raise LoadtestError("rate: per_s must be a number") from None
        sim.set_rate(rate)
        return {"rate_per_s": rate}
    if action == "sendlog/summary":
        return sim.send_log.summary(per_instrument=params.get("per_instrument") == "true")
    if action == "sendlog/flush":
        sim.send_log.flush()
        return {"directory": str(sim.send_log.directory)}
    if action == "sendlog/export":
        dest = params.get("dir")
        if not dest:
            raise LoadtestError("sendlog/export needs dir=PATH")
        return sim.export_send_log(Path(dest))
    raise LoadtestError(f"unknown control action {action!r}")
