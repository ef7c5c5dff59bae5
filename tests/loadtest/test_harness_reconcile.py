"""Reconciliation, latency quantiles and the chaos schedule on small hand-made inputs."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickarchive.loadtest import chaos
from tickarchive.loadtest.latency import bucket_delta, max_bound, quantile
from tickarchive.loadtest.reconcile import reconcile, uncovered_disconnects

I1 = "ETH-27DEC26-3000-C"
I2 = "ETH-27DEC26-3200-P"
T = 1_795_500_000_000_000  # µs


def _parquet(path: Path, rows: list[dict[str, object]]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), path)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _quote(inst: str, ts: int, status: str = "sent", wall: int | None = None) -> dict[str, object]:
    return {
        "instrument": inst,
        "ts_us": ts,
        "connection": "c1",
        "status": status,
        "wall_us": wall if wall is not None else ts + 300,
        "channel": f"ticker.{inst}.100ms",
    }


def _book(inst: str, ts: int, cid: int, n: int, status: str = "sent") -> dict[str, object]:
    return {
        "instrument": inst,
        "change_id": cid,
        "prev_change_id": cid - 3,
        "n_rows": n,
        "is_snapshot": False,
        "ts_us": ts,
        "connection": "c2",
        "status": status,
        "wall_us": ts + 200,
        "channel": f"book.{inst}.100ms",
    }


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    sl, st = tmp_path / "sendlog", tmp_path / "stored"
    sl.mkdir()
    st.mkdir()
    # quotes: 6 sent (one after the cutoff), 1 silenced; stored: 4 of the sent ones, one
    # key never sent (a duplicate beyond the sent keys), one stored row after the extra cutoff
    _parquet(
        sl / "quotes.parquet",
        [
            _quote(I1, T + 1_000),
            _quote(I1, T + 2_000),
            _quote(I1, T + 3_000),
            _quote(I2, T + 1_000),
            _quote(I2, T + 5_000_000),  # I2 @ +5 s: lost inside a gap
            _quote(I2, T + 9_000_000),  # sent after the cutoff: not counted
            _quote(I2, T + 7_000, status="silenced"),
        ],
    )
    _csv(
        st / "quotes.csv",
        ["instrument", "ts_us"],
        [
            [I1, T + 1_000],
            [I1, T + 2_000],
            [I2, T + 1_000],
            [I1, T + 4_000],  # never sent
            [I2, T + 9_000_000],  # after the extra cutoff: not an extra
        ],
    )
    # book messages: 3 sent (n_rows 2, 3, 0); stored: the first (2 rows, the DISTINCT export
    # gives one key) and an unknown message
    _parquet(
        sl / "book_changes.parquet",
        [
            _book(I1, T + 1_000, 100, 2),
            _book(I1, T + 2_000, 104, 3),
            _book(I1, T + 2_500, 105, 0),
        ],
    )
    _csv(
        st / "book_changes.csv",
        ["instrument", "ts_us", "change_id"],
        [
            [I1, T + 1_000, 100],
            [I2, T + 3_000, 7],
        ],
    )
    _parquet(
        sl / "index_ticks.parquet",
        [
            {
                "index_name": "eth_usd",
                "ts_us": T + 100_000,
                "connection": "c1",
                "status": "sent",
                "wall_us": T + 100_100,
                "channel": "deribit_price_index.eth_usd",
            },
        ],
    )
    _csv(st / "index_ticks.csv", ["index_name", "ts_us"], [["eth_usd", T + 100_000]])
    # gaps: one on I2 from +4.9 s to +5.2 s, one whole-connection gap still open at +8 s
    _csv(
        st / "gaps.csv",
        ["ts_us", "end_us", "instrument", "kind"],
        [
            [T + 4_900_000, T + 5_200_000, I2, "book_seq"],
            [T + 8_000_000, "", "*", "disconnect"],
        ],
    )
    # trades: history has 4 in the window + 1 before start; QuestDB has 3 of them (one
    # backfilled) and one unknown trade
    _csv(
        st / "history.csv",
        ["instrument", "trade_id", "ts_us"],
        [
            [I1, "ETH-1", T - 5_000_000],
            [I1, "ETH-2", T + 10_000],
            [I2, "ETH-3", T + 20_000],
            [I1, "ETH-4", T + 6_000_000],
            [I2, "ETH-5", T + 6_500_000],
        ],
    )
    _csv(
        st / "trades.csv",
        ["instrument", "trade_id", "ts_us", "source"],
        [
            [I1, "ETH-2", T + 10_000, "ws"],
            [I2, "ETH-3", T + 20_000, "ws"],
            [I1, "ETH-4", T + 6_000_000, "backfill"],
            [I2, "ETH-99", T + 30_000, "ws"],
        ],
    )
    (st / "quotes_count.txt").write_text("5")
    return sl, st


def test_reconcile_counts_exactly(dirs: tuple[Path, Path]) -> None:
    sl, st = dirs
    r = reconcile(sl, st, cutoff_us=T + 8_500_000, extra_cutoff_us=T + 7_500_000, start_us=T)
    t = r.by_table()

    q = t["quotes"]
    assert (q.sent, q.stored) == (5, 5)
    assert q.lost == 1  # I1 @ +3 ms: no gap covers it
    assert q.lost_in_gaps == 1  # I2 @ +5 s: inside the book_seq gap of I2
    assert q.duplicates == 1  # I1 @ +4 ms was never sent
    assert q.lost_sample == (f"{I1} ts_us={T + 3_000}",)

    b = t["book_changes"]
    assert b.sent == 5  # level rows: 2 + 3 (the empty message does not count)
    assert (b.lost, b.lost_in_gaps, b.duplicates) == (1, 0, 1)

    i = t["index_ticks"]
    assert (i.sent, i.stored, i.lost, i.duplicates) == (1, 1, 0, 0)

    tr = t["trades"]
    assert tr.sent == 4  # history in [start, cutoff]: ETH-2..5
    assert tr.lost == 1  # ETH-5: never stored, and a gap does not excuse a trade
    assert tr.lost_sample == (f"{I2} ETH-5 ts_us={T + 6_500_000}",)
    assert tr.duplicates == 1  # ETH-99 is not in the history
    assert r.trades_backfilled == 1
    assert (r.lost, r.duplicates) == (3, 3)


def test_open_gap_covers_later_losses(dirs: tuple[Path, Path]) -> None:
    sl, st = dirs
    # a later cutoff takes in the row sent at +9 s; the open '*' gap from +8 s covers it
    r = reconcile(sl, st, cutoff_us=T + 10_000_000, extra_cutoff_us=T + 7_500_000, start_us=T)
    q = r.by_table()["quotes"]
    assert q.sent == 6
    assert (q.lost, q.lost_in_gaps) == (1, 1)  # +9 s row is stored; +5 s in a gap


def test_uncovered_disconnects() -> None:
    gaps = [(T, T + 2_000_000), (T + 60_000_000, None)]
    closes = [T + 1_000_000, T + 6_500_000, T + 30_000_000, T + 90_000_000]
    # +6.5 s is 4.5 s after the first gap's end (within the 5 s slack); +30 s is in no gap
    assert uncovered_disconnects(closes, gaps) == [T + 30_000_000]


def test_quantiles_from_buckets() -> None:
    inf = float("inf")
    # 10 batches: 4 at <= 10 ms, 4 more at <= 50 ms, 2 more at <= 100 ms
    b = [(0.01, 4.0), (0.05, 8.0), (0.1, 10.0), (inf, 10.0)]
    assert quantile(0.5, b) == pytest.approx(0.01 + 0.04 * (5 - 4) / 4)
    assert quantile(0.95, b) == pytest.approx(0.05 + 0.05 * (9.5 - 8) / 2)
    assert max_bound(b) == 0.1
    assert quantile(0.5, [(0.01, 0.0), (inf, 0.0)]) is None
    # everything above the last finite bound: the bound is the answer
    assert quantile(0.99, [(0.01, 0.0), (inf, 3.0)]) == 0.01


def test_bucket_delta_and_reset() -> None:
    inf = float("inf")
    before = [(0.01, 4.0), (inf, 6.0)]
    now = [(0.01, 5.0), (inf, 9.0)]
    assert bucket_delta(now, before) == [(0.01, 1.0), (inf, 3.0)]
    restarted = [(0.01, 1.0), (inf, 2.0)]  # a new collector process counts from zero
    assert bucket_delta(restarted, now) == restarted


def test_chaos_schedule() -> None:
    plan = chaos.schedule(("disconnects", "collector-kill"), 20.0)
    assert [(a.at_s, a.kind) for a in plan] == [
        (2.0, "drop"),
        (6.0, "drop"),
        (10.0, "collector_kill"),
        (10.0, "drop"),
        (14.0, "drop"),
    ]
    plan = chaos.schedule(("questdb-restart",), 100.0)
    assert [(a.at_s, a.kind) for a in plan] == [(30.0, "questdb_down"), (50.0, "questdb_up")]
    with pytest.raises(chaos.ChaosError, match="unknown chaos mode 'flood'"):
        chaos.validate(("flood",), 60.0)
    with pytest.raises(chaos.ChaosError, match="questdb-restart needs --duration >= 30"):
        chaos.validate(("questdb-restart",), 20.0)


def test_quarantined_rows_are_not_lost(dirs: tuple[Path, Path]) -> None:
    """The rows the collector's quarantine lists count as quarantined, not lost; a key of
    another instrument, time or change_id does not excuse anything."""
    sl, st = dirs
    _csv(
        st / "quarantined.csv",
        ["table", "instrument", "ts_us", "change_id", "trade_id", "reason", "item"],
        [
            ["quotes", I1, T + 3_000, "", "", "malformed:invalid_data:ticker", 1],
            ["quotes", I2, T + 3_000, "", "", "rejected:quotes", 2],  # not a missing row
            ["book_changes", I1, T + 2_000, 104, "", "journal_damage", 3],
            ["book_changes", I1, T + 1_000, 999, "", "journal_damage", 3],  # wrong change_id
            ["trades", I2, "", "", "ETH-5", "unencodable:trades", 4],
        ],
    )
    r = reconcile(sl, st, cutoff_us=T + 8_500_000, extra_cutoff_us=T + 7_500_000, start_us=T)
    t = r.by_table()
    assert (t["quotes"].lost, t["quotes"].quarantined, t["quotes"].lost_in_gaps) == (0, 1, 1)
    assert (t["book_changes"].lost, t["book_changes"].quarantined) == (0, 1)
    assert (t["trades"].lost, t["trades"].quarantined) == (0, 1)
    assert t["quotes"].lost_sample == ()
    assert (r.lost, r.quarantined) == (0, 3)
