"""Gaps are told apart by their connection too (issue #14, finding 10): a fault that drops
every connection at once, or a crash, opens one gap per connection; each is a row of its
own, closed and backfilled on its own."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.test_collector import (
    collector_settings,
    quiesce,
    running,
    sim_config,
    stored_gaps,
    wait_for,
)
from tickarchive.domain import ALL_INSTRUMENTS, Gap, GapKind, GapStatus
from tickarchive.ingest.collector import record_decoder
from tickarchive.ingest.gaps import GapLedger
from tickarchive.ingest.journal import Journal
from tickarchive.loadtest.sim import Simulator
from tickarchive.settings import Settings, WriterSettings
from tickarchive.store.questdb_writer import QuestDBWriter
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.store.writer_contract import ilp_conf
from tickarchive.venues import deribit

T0 = 1_763_000_000_000_000


def _gap(connection: str, instrument: str = ALL_INSTRUMENTS, kind: GapKind = GapKind.DISCONNECT) -> Gap:
    return Gap(kind, instrument, T0, None, "connection lost", connection, GapStatus.OPEN)


async def test_simultaneous_gaps_of_several_connections_and_instruments_are_separate_rows(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    qdb = questdb_clean
    with Journal.open(tmp_path / "j") as j:
        w = QuestDBWriter(ilp_conf(qdb.host, qdb.http_port, 5.0), WriterSettings(), j,
                          record_decoder(deribit.build(Settings())))
        w._catch_up_step()
        ledger = GapLedger(w.add_side, lambda _job: None)
        opened = [_gap(f"c{i}") for i in range(4)]  # one fault, every connection, one instant
        opened += [_gap("c0", inst, GapKind.BOOK_SEQ) for inst in ("ETH-A", "ETH-B")]  # two books of c0
        for g in opened:
            ledger.record(g)
        assert len(ledger.open) == 6
        for g in opened[:4]:  # each connection's gap closes on its own
            ledger.record(Gap(g.kind, g.instrument, g.start_us, T0 + 1_000_000, g.cause, g.connection, g.status))
        assert len(ledger.open) == 2
        assert await w.flush()
        w.close()
    qdb.wait_for_wal()
    rows = sorted((g["connection"], g["instrument"], g["kind"], g["end_us"]) for g in stored_gaps(qdb))
    assert rows == [
        ("c0", "*", "disconnect", T0 + 1_000_000),
        ("c0", "ETH-A", "book_seq", None),
        ("c0", "ETH-B", "book_seq", None),
        ("c1", "*", "disconnect", T0 + 1_000_000),
        ("c2", "*", "disconnect", T0 + 1_000_000),
        ("c3", "*", "disconnect", T0 + 1_000_000),
    ]


async def test_a_drop_of_every_connection_leaves_one_gap_row_per_connection(
    tmp_path: Path, questdb_clean: QuestDBHandle
) -> None:
    """What a new user saw in `make demo`: a `drop` closed all four connections, the collector
    logged four gaps, the gaps table held one."""
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path)) as sim:
        async with running(collector_settings(connections=4), sim, qdb, tmp_path / "journal") as c:
            # (the deadlines only bound a failure)
            await wait_for(lambda: all(d.frames > 0 for d in c.drivers), 60, "data on every connection")
            connects = [d.connects for d in c.drivers]
            sim.inject("drop", conn="all")
            await wait_for(lambda: all(d.connects > n for d, n in zip(c.drivers, connects, strict=True)), 60,
                           "every connection back")
            await wait_for(c.all_subscribed, 60, "resubscribed")
            await quiesce(sim, c)
            logged = [g for g in c.ledger.history if g.kind is GapKind.DISCONNECT and g.end_us is not None]
        qdb.wait_for_wal()
    gaps = [g for g in stored_gaps(qdb) if g["kind"] == "disconnect"]
    assert sorted(g["connection"] for g in gaps) == ["c0", "c1", "c2", "c3"]
    assert {(g.connection, g.start_us) for g in logged} == {(g["connection"], g["start_us"]) for g in gaps}
    assert all(g["end_us"] is not None for g in gaps)
