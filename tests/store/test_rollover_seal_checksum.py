"""The sealing rule (pure, and observed on the real QuestDB) and the content checksum (pure)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tests.store import rollover_data as data
from tickarchive import rows
from tickarchive.domain import Gap, GapKind, GapStatus
from tickarchive.settings import LifecycleSettings
from tickarchive.store import seal
from tickarchive.store.checksum import Checksum, GroupSum, checksum_of, row_hashes
from tickarchive.store.hot import HotStore
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.tables import QUOTES, TRADES

D = dt.date(2026, 10, 6)
END = seal.day_start_us(D + dt.timedelta(days=1))
MIN = 60_000_000
SETTINGS = LifecycleSettings(seal_grace_min=30, backfill_timeout_min=120)
SHIPPED = seal.SealInputs(shipped_until_us=END + 5 * MIN, wal_pending_tables=(), open_backfills=0)


def test_sealed_only_after_the_grace_period() -> None:
    assert not seal.decide(D, END + 29 * MIN, SHIPPED, SETTINGS).sealed
    before = seal.decide(D, END + 29 * MIN, SHIPPED, SETTINGS)
    assert before.reasons == ("grace period runs until 2026-10-07T00:30:00.000000Z",)
    assert seal.decide(D, END + 30 * MIN, SHIPPED, SETTINGS) == seal.SealDecision(D, True, ())


def test_not_sealed_until_shipped_past_the_day_and_wal_applied() -> None:
    late = END + 600 * MIN
    nothing = seal.SealInputs(None, (), 0)
    assert seal.decide(D, late, nothing, SETTINGS).reasons == (
        "QuestDB holds no row received at or after 2026-10-07T00:00:00.000000Z (journal not shipped past the day)",)
    just_before = seal.SealInputs(END - 1, (), 0)
    assert not seal.decide(D, late, just_before, SETTINGS).sealed
    assert seal.decide(D, late, seal.SealInputs(END, (), 0), SETTINGS).sealed
    pending = seal.SealInputs(END, ("quotes", "trades"), 0)
    assert seal.decide(D, late, pending, SETTINGS).reasons == ("QuestDB WAL not applied yet on quotes, trades",)


def test_open_backfills_hold_the_day_until_the_timeout() -> None:
    open_gap = seal.SealInputs(END + MIN, (), 2)
    held = seal.decide(D, END + 119 * MIN, open_gap, SETTINGS)
    assert not held.sealed
    assert (held.reasons == (
        "2 backfill gap(s) still open (timeout 2026-10-07T02:00:00.000000Z)",))
    timed_out = seal.decide(D, END + 120 * MIN, open_gap, SETTINGS)
    assert timed_out.sealed
    assert timed_out.reasons == ("2 backfill gap(s) still open past the timeout: sealed anyway",)


def test_observe_reads_shipping_and_open_gaps_from_questdb(questdb_clean: QuestDBHandle) -> None:
    data.write(questdb_clean, data.all_events([D]))  # includes a heartbeat at 00:05 the next day
    with HotStore(questdb_clean.pg_dsn, questdb_clean.http_url) as hot:
        got = seal.observe(hot.conn, D)
        assert got == seal.SealInputs(END + 5 * MIN, (), 0)
        assert seal.observe(hot.conn, D + dt.timedelta(days=1)).shipped_until_us is None
        gap = Gap(kind=GapKind.TRADE_SEQ, instrument=data.CALL, start_us=data.us(D, 22), end_us=data.us(D, 22, 1),
                  cause="trade_seq 12 -> 15", connection="c1", status=GapStatus.OPEN)
        data.write(questdb_clean, [gap])
        assert seal.observe(hot.conn, D).open_backfills == 1
        assert seal.observe(hot.conn, D - dt.timedelta(days=1)).open_backfills == 0
        data.write(questdb_clean, [Gap(kind=gap.kind, instrument=gap.instrument, start_us=gap.start_us,
                                       end_us=gap.end_us, cause=gap.cause, connection="c1",
                                       status=GapStatus.BACKFILLED)])  # DEDUP upsert: same key
        assert seal.observe(hot.conn, D).open_backfills == 0
        stale = [Gap(kind=GapKind.STALE, instrument=inst, start_us=data.us(D, 23), end_us=data.us(D, 23, 0, 12.0),
                     cause="silent", connection="c0", status=GapStatus.OPEN) for inst in ("*", data.PUT)]
        data.write(questdb_clean, stale)  # only the connection-wide one is backfilled by the collector
        assert seal.observe(hot.conn, D).open_backfills == 1


def _trades() -> pa.Table:
    return rows.events_to_arrow(TRADES, data.trades_of(D) + data.trades_of(D + dt.timedelta(days=1)))


def test_checksum_is_order_and_batching_independent() -> None:
    t = _trades()
    whole = checksum_of(TRADES, [t])
    shuffled = t.take(pa.array([9, 3, 0, 7, 1, 8, 2, 6, 4, 5]))
    assert checksum_of(TRADES, shuffled.to_batches(max_chunksize=3)) == whole
    assert whole.rows == 10
    assert set(whole.groups) == {data.CALL, data.PUT}
    assert whole.groups[data.PUT].rows == 2
    # additive: the union of disjoint halves sums
    a, b = checksum_of(TRADES, [t.slice(0, 4)]), checksum_of(TRADES, [t.slice(4)])
    assert (a.sum64 + b.sum64) % (1 << 64) == whole.sum64


def test_checksum_sees_every_change() -> None:
    t = _trades()
    base = checksum_of(TRADES, [t])
    dup = checksum_of(TRADES, [t, t.slice(0, 1)])
    assert dup.rows == 11
    assert dup.hex() != base.hex()
    price = t.column("price").to_pylist()
    price[0] = 0.04500000000000001  # the next double
    changed = t.set_column(t.schema.get_field_index("price"), t.schema.field("price"), pa.array(price))
    diff = base.differences(checksum_of(TRADES, [changed]))
    assert len(diff) == 1
    assert diff[0].startswith(f"{data.CALL}: hot 8 rows/")
    # NULL is not zero, and not an empty string
    iv = t.column("iv").to_pylist()
    nulls = t.set_column(t.schema.get_field_index("iv"), t.schema.field("iv"), pa.array([None, *iv[1:]]))
    zeros = t.set_column(t.schema.get_field_index("iv"), t.schema.field("iv"), pa.array([0.0, *iv[1:]]))
    assert len({checksum_of(TRADES, [x]).hex() for x in (t, nulls, zeros)}) == 3
    h = row_hashes(TRADES, t)
    assert len(set(h.tolist())) == 10


def test_checksum_of_quotes_and_empty() -> None:
    q = rows.events_to_arrow(QUOTES, data.quotes_of(D, 10))
    c = checksum_of(QUOTES, q.to_batches())
    assert c.rows == 10
    assert c.groups[data.CALL] == GroupSum(5, c.groups[data.CALL].sum64)
    assert checksum_of(QUOTES, []) == Checksum({})
    assert Checksum({}).hex() == "0000000000000000"
    with pytest.raises(KeyError):
        checksum_of(TRADES, [q])  # a quote batch has no trade_id
