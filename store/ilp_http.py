"""ILP over HTTP for request bodies the writer has already encoded (blocking, one table
per request).

QuestDB's ILP/HTTP endpoint is ``POST /write``: the body is ILP lines, the answer is
``204 No Content`` once the rows are committed, or a 4xx/5xx with a JSON error
(``{"code": ..., "message": ..., "line": ..., "errorId": ...}``) and nothing of the
request committed. A request holding the rows of one table is one transaction — the
contract the writer relies on (docs/journal.md).

Why not ``questdb.ingress.Sender``: the Sender only sends its own ``Buffer`` objects,
and the native fast path (``tickarchive.venues.deribit.native``) hands the writer rows that are already
ILP bytes. Everything else (``Buffer`` rows, protocol version 2 with binary doubles)
is byte-identical to what the Sender would send (``store.ilp``); the Sender is still
used by the one-shot loaders (replay, backfill).

Protocol version 2 (binary doubles) needs QuestDB 9.0 or later; the transport checks
``GET /settings`` (``line.proto.support.versions``) once per connection and refuses
clearly otherwise.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import NoReturn

from tickarchive.store.errors import IlpHttpError

PROTOCOL_VERSION = 2
IDLE_RECONNECT_S = 30.0
"""A kept-alive connection idle longer than this is replaced before use."""
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)
"""What a request on a connection the server closed while it sat idle fails with."""


@dataclass(frozen=True, slots=True)
class IlpHttpTarget:
    host: str
    port: int
    timeout_s: float

    @classmethod
    def from_conf(cls, conf: str) -> IlpHttpTarget:
        """From a client configuration string (``http::addr=host:port;request_timeout=ms;...``)."""
        schema, _, rest = conf.partition("::")
        if schema != "http":
            raise IlpHttpError(f"ILP transport must be http, got {schema!r}")
        params = dict(p.split("=", 1) for p in rest.split(";") if "=" in p)
        host, _, port = params.get("addr", "").rpartition(":")
        if not host or not port.isascii() or not port.isdigit():
            raise IlpHttpError(f"ILP configuration has no addr=host:port: {conf!r}")
        timeout_ms = params.get("request_timeout", "30000")
        return cls(host, int(port), int(timeout_ms) / 1000.0 if timeout_ms.isdigit() else 30.0)


class IlpHttpTransport:
    """One keep-alive HTTP connection; ``send`` blocks (run it in a thread). Not
    thread-safe: the writer keeps one transport per table."""

    def __init__(self, target: IlpHttpTarget) -> None:
        self.target = target
        self._conn: http.client.HTTPConnection | None = None
        self._last_used_s = 0.0

    @classmethod
    def from_conf(cls, conf: str) -> IlpHttpTransport:
        return cls(IlpHttpTarget.from_conf(conf))

    def _connect(self) -> http.client.HTTPConnection:
        t = self.target
        conn = http.client.HTTPConnection(t.host, t.port, timeout=t.timeout_s)
        try:
            conn.request("GET", "/settings")
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise IlpHttpError(f"QuestDB at {t.host}:{t.port} unreachable: {exc}") from exc
        if resp.status == 200:
            try:
                versions = json.loads(body).get("config", {}).get("line.proto.support.versions")
            except (ValueError, AttributeError):
                versions = None
            if isinstance(versions, list) and PROTOCOL_VERSION not in versions:
                conn.close()
                raise IlpHttpError(
                    f"QuestDB at {t.host}:{t.port} accepts ILP protocol versions {versions}, not "
                    f"{PROTOCOL_VERSION} (binary doubles): QuestDB 9.0 or later is needed"
                )
        return conn

    def send(self, payload: bytes) -> None:
        """POST one table's rows; return when QuestDB has committed them.

        A kept-alive connection the server has closed in the meantime (idle tables such
        as ``instruments`` write every few minutes; QuestDB drops idle connections) shows
        up as a broken pipe or a reset on its next request: that request is sent once more
        on a fresh connection (a repeat is harmless: DEDUP keys) before it counts as failed.
        Connections idle longer than ``IDLE_RECONNECT_S`` are not reused at all."""
        conn = self._conn
        now = time.monotonic()
        if conn is not None and now - self._last_used_s > IDLE_RECONNECT_S:
            self.close()
            conn = None
        reused = conn is not None
        if conn is None:
            conn = self._conn = self._connect()
        try:
            status, body = self._post(conn, payload)
        except _STALE as exc:
            if not reused:
                self._failed(exc)
            self.close()
            conn = self._conn = self._connect()
            try:
                status, body = self._post(conn, payload)
            except (OSError, http.client.HTTPException) as exc2:
                self._failed(exc2)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(exc)
        self._last_used_s = time.monotonic()
        if status in (200, 204):
            return
        self.close()
        raise IlpHttpError(f"QuestDB refused the rows: HTTP {status}: {_message(body)}", status, _line(body))

    @staticmethod
    def _post(conn: http.client.HTTPConnection, payload: bytes) -> tuple[int, bytes]:
        conn.request("POST", "/write", body=payload, headers={"Content-Type": "text/plain; charset=utf-8"})
        resp = conn.getresponse()
        return resp.status, resp.read()

    def _failed(self, exc: BaseException) -> NoReturn:
        self.close()
        t = self.target
        raise IlpHttpError(f"ILP/HTTP request to {t.host}:{t.port} failed: {exc!r}") from exc

    def close(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.close()


def _message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace")
    if isinstance(doc, dict):
        parts = [" ".join(str(doc.get("message", "")).split())]
        if doc.get("line") is not None:
            parts.append(f"line {doc['line']}")
        if doc.get("errorId"):
            parts.append(f"errorId {doc['errorId']}")
        return ", ".join(p for p in parts if p)
    return str(doc)[:300]


def _line(body: bytes) -> int | None:
    """The ``line`` QuestDB's JSON error names (1-based), if any."""
    try:
        line = json.loads(body).get("line")
    except (ValueError, AttributeError):
        return None
    return line if isinstance(line, int) and line > 0 else None
