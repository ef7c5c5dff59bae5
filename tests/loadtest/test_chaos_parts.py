"""The fault campaign's parts one by one, against the real things they act on: the chaos
schedule, the keys the harness reads out of frames and ILP rows, journal damage against
the collector's journal and quarantine, the journal's small file system filled to the
last block, and the chaos proxy in front of a real QuestDB."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from tickarchive.domain import BookAction, BookChange, IndexTick, QuoteTick, Side, TradeTick
from tickarchive.ingest.errors import JournalFull
from tickarchive.ingest.journal import Journal, JournalReader
from tickarchive.ingest.journal.files import Damage
from tickarchive.ingest.quarantine import Quarantine, quarantine_dir
from tickarchive.loadtest import chaos, chaos_journal
from tickarchive.loadtest.chaos_disk import SmallFilesystem
from tickarchive.loadtest.chaos_proxy import POISONED_ROWS, ChaosProxy
from tickarchive.loadtest.errors import ChaosError
from tickarchive.loadtest.journal_files import quarantine_blob, quarantine_items, read_records, segments
from tickarchive.loadtest.quarantine_keys import frame_keys, ilp_row_key, read_quarantine
from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim.faults import POISON_SHAPES, poison_ticker
from tickarchive.store.errors import IlpHttpError
from tickarchive.store.ilp import IlpEncoder, split_rows
from tickarchive.store.ilp_http import IlpHttpTransport
from tickarchive.store.isolate import isolate
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.store.writer_contract import ilp_conf

I1 = "ETH-27DEC26-3000-C"
T = 1_795_500_000_000_000


def _ticker(inst: str, ts_ms: int, seq: int) -> bytes:
    data = b'{"instrument_name":"%s","timestamp":%d,"best_bid_price":0.01,"best_bid_amount":%d.0}' % (
        inst.encode(), ts_ms, seq
    )
    return encode.notification(f"ticker.{inst}.100ms", data)


# ---------------------------------------------------------------------------- schedule


def test_all_expands_to_every_mode_and_the_schedule_orders_them() -> None:
    modes = chaos.validate(("all", "poison"), 180.0)
    assert modes == chaos.MODES
    kinds = [a.kind for a in chaos.schedule(modes, 180.0)]
    for k in ("questdb_kill", "writes_hold", "journal_corrupt", "disk_fill", "disk_release", "poison",
              "reject_on", "reject_off", "questdb_down", "questdb_up", "collector_kill", "silence"):
        assert k in kinds
    plan = chaos.schedule(("journal-corrupt", "disk-full", "questdb-reject"), 100.0)
    assert [(round(a.at_s, 6), a.kind) for a in plan] == [
        (10.0, "reject_on"), (25.0, "reject_off"), (55.0, "writes_hold"), (59.0, "journal_corrupt"),
        (70.0, "disk_fill"), (75.0, "disk_release"),
    ]
    # a short run keeps the windows inside the run's first 85 %
    assert max(a.at_s for a in chaos.schedule(("journal-corrupt", "disk-full"), 12.0)) <= 12.0 * 0.85
    with pytest.raises(ChaosError, match="disk-full needs --duration >= 10"):
        chaos.validate(("disk-full",), 5.0)
    with pytest.raises(ChaosError, match=r"unknown chaos mode 'flood'.*, all"):
        chaos.validate(("flood",), 60.0)


# ---------------------------------------------------------------------------- keys


def test_keys_from_frames_and_ilp_rows() -> None:
    assert frame_keys(_ticker(I1, T // 1000, 1)) == [("quotes", I1, T, None, None)]
    # a poison frame the parser refuses still names its key
    data, ts_us = poison_ticker("nan_strings", I1, 7, T // 1000)
    assert frame_keys(encode.notification(f"ticker.{I1}.100ms", data)) == [("quotes", I1, ts_us, None, None)]
    assert frame_keys(b"not json") == []
    enc = IlpEncoder(protocol_version=2)
    enc.add_all([
        QuoteTick(I1, T, T + 5, 0.01, 1.0, underlying_index="a b,c"),
        TradeTick(I1, T, T + 5, "ETH-123", 5, 0.1, 1.0, "buy"),
        BookChange(I1, T, T + 5, 77, 76, False, Side.BID, BookAction.NEW, 0.1, 2.0),
        IndexTick("eth_usd", T, T + 5, 3000.0),
    ])
    keys = sorted(ilp_row_key(r) for body, _n in enc.take_payloads().values() for r in split_rows(body))  # type: ignore[type-var]
    assert keys == [
        ("book_changes", I1, T, 77, None),
        ("index_ticks", "eth_usd", T, None, None),
        ("quotes", I1, T, None, None),
        ("trades", I1, T, None, "ETH-123"),
    ]


def test_poison_shapes_have_unique_keys() -> None:
    now_ms = T // 1000
    made = [poison_ticker(shape, I1, 1000 + i, now_ms, huge_bytes=64) for i, shape in enumerate(POISON_SHAPES)]
    keys = [ts for _d, ts in made]
    assert len(set(keys)) == len(POISON_SHAPES)
    assert keys[0] < 0  # negative
    assert keys[1] > 253_402_300_799_999_999  # past year 9999
    assert all(k != now_ms * 1000 for k in keys)  # never a key the market model sends now
    assert b'"underlying_index":"' + b"X" * 64 + b'"' in made[3][0]


# ---------------------------------------------------------------------------- journal damage


def test_damaged_records_are_the_ones_the_quarantine_lists(tmp_path: Path) -> None:
    """The harness damages 4 records (a length and a payload in a sealed and in the active
    segment); the collector's journal, opened and read as the collector does, reports
    exactly those as lost and its quarantine copies them aside; the harness's reading of
    the quarantine finds the keys of exactly those records."""
    jdir = tmp_path / "journal"
    j = Journal.open(jdir, segment_bytes=256 * 1024)
    seq = 0
    while len(segments(jdir)) < 3 or segments(jdir)[-1].stat().st_size < 3 * chaos_journal.TAIL_MARGIN_BYTES:
        batch = [(_ticker(I1, T // 1000 + seq + i, seq + i), T + seq + i) for i in range(50)]
        j.append_many(batch, "c0")
        seq += 50
    j.sync()
    j.commit(100)
    j.close()
    assert chaos_journal.ready(jdir)
    damaged = chaos_journal.corrupt(jdir)
    assert [d.what for d in damaged] == ["length", "payload", "length", "payload"]
    assert all(d.seq > 100 for d in damaged)  # past the checkpoint: rows not stored yet
    assert len({d.segment for d in damaged}) == 2
    assert all(len(d.keys) == 1 for d in damaged)

    found: list[Damage] = []
    q = Quarantine(quarantine_dir(jdir))

    def on_damage(path: Path, d: Damage) -> None:
        found.append(d)
        q.journal_damage(path, d)

    j = Journal.open(jdir, segment_bytes=256 * 1024, on_damage=on_damage)  # repairs the active one
    try:
        read = [r.seq for r in JournalReader(jdir, on_damage).read_from(1)]
    finally:
        j.close()
    lost = {s for d in found if d.lost_seqs for s in range(d.lost_seqs[0], d.lost_seqs[1] + 1)}
    assert lost == {d.seq for d in damaged}
    assert set(read) == set(range(1, seq + 1)) - lost  # everything else is read
    rep = read_quarantine(jdir, damaged)
    assert rep.items == {"journal_damage": 4}
    assert {k for k, _r, _n in rep.keys} == {k for d in damaged for k in d.keys}


def test_harness_reads_records_as_the_journal_wrote_them(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, segment_bytes=1 << 20)
    frames = [(_ticker(I1, T // 1000 + i, i), T + i) for i in range(20)]
    j.append_many(frames, "c3")
    j.close()
    recs = list(read_records(segments(tmp_path)[0].read_bytes()))
    assert [(r.seq, r.connection, r.frame, r.recv_ts_us) for r in recs] == [
        (i + 1, "c3", f, ts) for i, (f, ts) in enumerate(frames)
    ]


# ---------------------------------------------------------------------------- disk full


def test_small_file_system_fills_to_the_last_block_and_frees(tmp_path: Path) -> None:
    fs = SmallFilesystem(tmp_path / "mnt", tmp_path / "fs.img", 32 * 1024 * 1024)
    fs.mount()
    try:
        jdir = fs.mountpoint / "journal"
        j = Journal.open(jdir)
        try:
            j.append(_ticker(I1, T // 1000, 1), T, "c0")
            counted: list[str] = []
            q = Quarantine(quarantine_dir(jdir), on_item=counted.append)  # (made at start-up)
            assert fs.fill() > 16 * 1024 * 1024
            assert fs.free_bytes() == 0
            with pytest.raises(JournalFull):
                j.append(_ticker(I1, T // 1000 + 1, 2) * 10, T + 1, "c0")
            with pytest.raises(OSError, match="No space left") as exc:
                (jdir / "probe").write_bytes(b"x" * 8192)
            assert exc.value.errno == errno.ENOSPC
            # a full disk stops neither the writer's checkpoint nor the quarantine: the
            # checkpoint stays where it was, the item is counted
            j.commit(1)
            assert j.acked_seq == 0
            assert JournalReader(jdir).acked_seq == 0
            assert q.add("malformed:invalid_json", "c0 seq 1: not json", b"x" * 8192, (1, 1)) is None
            assert counted == ["malformed:invalid_json"]  # counted at once
            assert q.retry_pending() == 1  # held in memory: no room yet
            assert list(quarantine_items(jdir)) == []
            fs.release()
            assert fs.free_bytes() > 16 * 1024 * 1024
            j.commit(1)
            assert JournalReader(jdir).acked_seq == 1
            assert q.retry_pending() == 0  # listed now that there is room
            (item,) = quarantine_items(jdir)
            assert (item.reason, item.seqs, item.size) == ("malformed:invalid_json", (1, 1), 8192)
            assert quarantine_blob(jdir, item) == b"x" * 8192
            assert q.unlisted == {}
            assert j.append(_ticker(I1, T // 1000 + 1, 2), T + 1, "c0") == 2
        finally:
            j.close()
    finally:
        fs.unmount()
    assert not os.path.ismount(tmp_path / "mnt")
    assert not (tmp_path / "fs.img").exists()


# ---------------------------------------------------------------------------- the proxy


def _quotes_body(n: int, t0: int) -> bytes:
    enc = IlpEncoder(protocol_version=2)
    enc.add_all([QuoteTick(I1, t0 + i, t0 + i, 0.01, 1.0) for i in range(n)])
    return enc.take_payloads()["quotes"][0]


def test_proxy_forwards_holds_rejects_and_refuses_rows_for_good(questdb: QuestDBHandle) -> None:
    proxy = ChaosProxy(questdb.host, questdb.http_port)
    port = proxy.start()
    t = IlpHttpTransport.from_conf(ilp_conf(questdb.host, port, 30.0))
    try:
        t.send(_quotes_body(3, T))  # forwarded: QuestDB acknowledges
        proxy.hold = True
        with pytest.raises(IlpHttpError) as held:
            t.send(_quotes_body(3, T + 100))
        assert held.value.status == 503
        assert not held.value.rejects_rows  # the writer retries it
        proxy.hold = False
        proxy.start_rejecting()
        body = _quotes_body(20, T + 1000)  # donates the rows refused for good
        rows = split_rows(body)
        sent: list[bytes] = []

        async def send(part: bytes) -> None:
            await asyncio.to_thread(t.send, part)
            sent.append(part)

        first: IlpHttpError | None = None
        for _ in range(10):  # until the proxy's transient answers let the batch be isolated
            try:
                t.send(body)
            except IlpHttpError as exc:
                first = exc
                if exc.rejects_rows:
                    break
        assert first is not None
        assert first.rejects_rows
        res = asyncio.run(isolate(body, first, send))
        while res.retry is not None:  # a 503 in between: the writer retries, as here
            res = asyncio.run(isolate(body, IlpHttpError("again", 400), send))
        assert sorted(r for r, _m in res.bad) == sorted(proxy.stats.poisoned_rows)
        assert len(res.bad) == POISONED_ROWS
        assert res.acked_rows == len(rows) - POISONED_ROWS
        proxy.stop_rejecting()
        with pytest.raises(IlpHttpError) as again:  # refused for good, after the window too
            t.send(proxy.stats.poisoned_rows[0])
        assert again.value.status == 400
        assert proxy.stats.answered["poisoned_400"] >= 2
    finally:
        t.close()
        proxy.close()
