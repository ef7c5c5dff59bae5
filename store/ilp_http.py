"""ILP over HTTP for request bodies the writer has already encoded (blocking, one table
per request).

QuestDB's ILP/HTTP endpoint is ``POST /write``: the body is ILP lines, the answer is
``204 No Content`` once the rows are committed, or a 4xx/5xx with a JSON error
(``{"code": ..., "message": ..., "line": ..., "errorId": ...}``) and nothing of the
request committed. A request holding the rows of one table is one transaction — the
contract the writer relies on (DESIGN.md §5).

Why not ``questdb.ingress.Sender``: the Sender only sends its own ``Buffer`` objects,
and the native fast path (``ingest.native``) hands the writer rows that are already
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
from dataclasses import dataclass

from store.errors import StoreError

PROTOCOL_VERSION = 2


class IlpHttpError(StoreError):
    """A request was not acknowledged: transport failure or QuestDB refused the rows."""


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
        """POST one table's rows; return when QuestDB has committed them."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        t = self.target
        try:
            conn.request("POST", "/write", body=payload, headers={"Content-Type": "text/plain; charset=utf-8"})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise IlpHttpError(f"ILP/HTTP request to {t.host}:{t.port} failed: {exc!r}") from exc
        if resp.status in (200, 204):
            return
        self.close()
        raise IlpHttpError(f"QuestDB refused the rows: HTTP {resp.status}: {_message(body)}")

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
