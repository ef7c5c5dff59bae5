"""``store.ilp_http``: the writer's ILP/HTTP transport against a real QuestDB."""

from __future__ import annotations

import pytest

from store.ilp import IlpEncoder
from store.ilp_http import IlpHttpError, IlpHttpTarget, IlpHttpTransport
from store.questdb_writer import ilp_conf
from store.stack.handles import QuestDBHandle
from store.stack.procs import free_port
from tickarchive import domain as d


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


def test_an_unreachable_questdb_is_a_clear_error() -> None:
    port = free_port()
    t = IlpHttpTransport(IlpHttpTarget("127.0.0.1", port, 1.0))
    with pytest.raises(IlpHttpError, match=f"QuestDB at 127.0.0.1:{port} unreachable"):
        t.send(b"index_ticks,index_name=x price=1.0 1t\n")
