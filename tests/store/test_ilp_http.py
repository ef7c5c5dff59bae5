"""``store.ilp_http``: the writer's ILP/HTTP transport against a real QuestDB."""

from __future__ import annotations

import pytest

from tickarchive import domain as d
from tickarchive.store.errors import IlpHttpError
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.ilp_http import IlpHttpTarget, IlpHttpTransport
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.store.writer_contract import ilp_conf


def test_target_from_the_writer_configuration() -> None:
    assert IlpHttpTarget.from_conf(ilp_conf("127.0.0.1", 19000, 2.5)) == IlpHttpTarget("127.0.0.1", 19000, 2.5)
    with pytest.raises(IlpHttpError, match="must be http"):
        IlpHttpTarget.from_conf("tcp::addr=127.0.0.1:9009;")
    with pytest.raises(IlpHttpError, match="addr=host:port"):
        IlpHttpTarget.from_conf("http::request_timeout=10;")


def test_rows_are_committed_and_a_refused_request_commits_nothing(questdb_clean: QuestDBHandle) -> None:
    qdb = questdb_clean
    t = IlpHttpTransport.from_conf(ilp_conf(qdb.host, qdb.http_port, 10.0))
    enc = IlpEncoder(protocol_version=2)
    t0 = 1_700_000_000_000_000
    enc.add_all([d.IndexTick("eth_usd", t0 + i, t0 + 100_000, 2000.5 + i) for i in range(3)])
    body, n = enc.take_payloads()["index_ticks"]
    assert n == 3
    t.send(body)
    t.send(body)  # keep-alive connection reused; DEDUP makes the resend harmless
    with pytest.raises(IlpHttpError, match=r"QuestDB refused the rows: HTTP 400: .*line 2"):
        t.send(b"index_ticks,index_name=eth_usd price=7.0 1700000000000009t\ngarbage line\n")
    t.send(body)  # a fresh connection after the refusal
    t.close()
    qdb.wait_for_wal()
    rows = qdb.query("SELECT index_name, price, cast(ts AS long) FROM index_ticks ORDER BY ts")
    assert [tuple(r) for r in rows] == [("eth_usd", 2000.5 + i, t0 + i) for i in range(3)]


def test_an_unreachable_questdb_is_a_clear_error(dead_port: int) -> None:
    port = dead_port
    t = IlpHttpTransport(IlpHttpTarget("127.0.0.1", port, 1.0))
    with pytest.raises(IlpHttpError, match=f"QuestDB at 127.0.0.1:{port} unreachable"):
        t.send(b"index_ticks,index_name=x price=1.0 1t\n")


class _OneShotServer:
    """An HTTP peer that answers ``requests_per_connection`` requests on a connection and
    then closes it without saying so (as a server dropping an idle keep-alive connection)."""

    def __init__(self, requests_per_connection: int) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.per_conn = requests_per_connection
        self.connections = 0
        self.posts: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            f = conn.makefile("rb")
            for _ in range(self.per_conn):
                line = f.readline()
                if not line:
                    break
                length = 0
                while (h := f.readline()) not in (b"\r\n", b""):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                body = f.read(length)
                if line.startswith(b"POST"):
                    self.posts.append(body)
                    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                else:
                    doc = b'{"config":{"line.proto.support.versions":[1,2,3]}}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(doc), doc))
            f.close()
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_a_connection_the_server_dropped_is_replaced_without_an_error() -> None:
    server = _OneShotServer(requests_per_connection=2)  # GET /settings + one POST, then gone
    try:
        t = IlpHttpTransport(IlpHttpTarget("127.0.0.1", server.port, 2.0))
        t.send(b"a\n")
        t.send(b"b\n")  # the kept-alive connection is dead: sent again on a new one
        t.send(b"c\n")
        t.close()
        assert server.posts == [b"a\n", b"b\n", b"c\n"]
        assert server.connections == 3
    finally:
        server.close()


def test_an_idle_connection_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    import tickarchive.store.ilp_http as ilp_http

    server = _OneShotServer(requests_per_connection=100)
    monkeypatch.setattr(ilp_http, "IDLE_RECONNECT_S", -1.0)
    try:
        t = IlpHttpTransport(IlpHttpTarget("127.0.0.1", server.port, 2.0))
        t.send(b"a\n")
        t.send(b"b\n")
        t.close()
        assert server.posts == [b"a\n", b"b\n"]
        assert server.connections == 2
    finally:
        server.close()
