"""Top-N book snapshots every X ms equal a brute-force replay of the stored messages up
to each instant; a skipped change id flags the book until the next snapshot; only_changed
keeps Tardis's emit-on-change rows."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

from tests.products.synth import T0, S
from tickarchive.products import build
from tickarchive.products.build import BookSpec, book_snapshots
from tickarchive.products.source import FrameSource

NAME = "ETH-30OCT26-3000-C"
MS = 1000


def messages(seed: int, n: int = 400) -> list[dict[str, Any]]:
    """Book rows: a snapshot, changes every few hundred ms, one skipped change id at
    message 150, a fresh snapshot at message 250."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    book = {"bid": {0.05 - 0.0005 * i: float(rng.randrange(1, 40)) for i in range(5)},
            "ask": {0.051 + 0.0005 * i: float(rng.randrange(1, 40)) for i in range(5)}}
    cid, t = 1000, T0 + 5 * S

    def snapshot() -> None:
        for side, levels in book.items():
            for px, amt in levels.items():
                rows.append(dict(ts=t, change_id=cid, prev_change_id=None, is_snapshot=True, side=side,
                                 action="snapshot", price=px, amount=amt))

    snapshot()
    for m in range(n):
        prev = cid
        cid += rng.randrange(1, 5)
        if m == 150:
            prev -= 1  # a change id went missing
        t += rng.randrange(50, 900) * MS
        if m == 250:
            snapshot()
            continue
        touched: set[tuple[str, float]] = set()
        for _ in range(rng.randrange(1, 4)):
            side = rng.choice(("bid", "ask"))
            px = round((0.048 if side == "bid" else 0.051) + 0.0005 * rng.randrange(-4, 8), 4)
            if (side, px) in touched:
                continue  # a message names a level once (the dedup key holds side and price)
            touched.add((side, px))
            if px in book[side] and rng.random() < 0.4:
                book[side].pop(px)
                rows.append(dict(ts=t, change_id=cid, prev_change_id=prev, is_snapshot=False, side=side,
                                 action="delete", price=px, amount=0.0))
            else:
                act = "change" if px in book[side] else "new"
                book[side][px] = float(rng.randrange(1, 40))
                rows.append(dict(ts=t, change_id=cid, prev_change_id=prev, is_snapshot=False, side=side,
                                 action=act, price=px, amount=book[side][px]))
    return rows


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"ts": pl.Int64, "change_id": pl.Int64, "prev_change_id": pl.Int64,
                                      "is_snapshot": pl.Boolean, "side": pl.String, "action": pl.String,
                                      "price": pl.Float64, "amount": pl.Float64}).with_columns(
        pl.lit(NAME).alias("instrument"))


def brute(rows: list[dict[str, Any]], at: int, depth: int) -> tuple[list[Any], int, bool] | None:
    """Replay from the newest snapshot at or before ``at``."""
    upto = [r for r in rows if r["ts"] <= at]
    snaps = [r for r in upto if r["is_snapshot"]]
    if not snaps:
        return None
    sid = max(r["change_id"] for r in snaps)
    book: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    ok, last = True, sid
    for r in sorted(upto, key=lambda r: (r["ts"], r["change_id"])):
        if r["is_snapshot"] and r["change_id"] == sid:
            book[r["side"]][r["price"]] = r["amount"]
        elif not r["is_snapshot"] and r["change_id"] > sid:
            if r["change_id"] != last:
                ok = ok and r["prev_change_id"] == last
                last = r["change_id"]
            if r["action"] == "delete":
                book[r["side"]].pop(r["price"], None)
            else:
                book[r["side"]][r["price"]] = r["amount"]
    bids = sorted(book["bid"].items(), reverse=True)[:depth]
    asks = sorted(book["ask"].items())[:depth]
    levels: list[Any] = []
    for i in range(depth):
        b = bids[i] if i < len(bids) else (None, None)
        a = asks[i] if i < len(asks) else (None, None)
        levels += [b[0], b[1], a[0], a[1]]
    return levels, max(r["ts"] for r in upto), ok


@pytest.mark.parametrize(("interval_ms", "depth"), [(100, 3), (2500, 25)])
def test_snapshots_equal_a_replay(interval_ms: int, depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = messages(seed=interval_ms)
    end = max(r["ts"] for r in rows) + 2 * S
    start = T0 + 2 * S  # before the first snapshot: those instants have no row
    if interval_ms == 100:
        end = T0 + 90 * S
        monkeypatch.setattr(build, "INSTANTS_PER_WINDOW", 37)  # many windows
    src = FrameSource(pl.DataFrame(), book_rows=frame(rows))
    spec = BookSpec(NAME, start, end, interval_ms * MS, depth=depth)
    got = pl.concat(list(book_snapshots(src, spec)))
    assert got.columns[:8] == ["at", "instrument", "book_ts", "change_id", "snapshot_ts", "staleness_s",
                               "sequence_ok", "in_gap"]
    level_cols = got.columns[8:]
    assert len(level_cols) == 4 * depth
    assert level_cols[:4] == ["bid_0_price", "bid_0_amount", "ask_0_price",
                                                                 "ask_0_amount"]
    seen = {r["at"]: r for r in got.iter_rows(named=True)}
    instants = list(range(-(-start // (interval_ms * MS)) * interval_ms * MS, end, interval_ms * MS))
    assert any(not r["sequence_ok"] for r in seen.values()) or interval_ms == 100
    for at in instants:
        want = brute(rows, at, depth)
        if want is None:
            assert at not in seen
            continue
        r = seen[at]
        assert [r[c] for c in level_cols] == want[0], at
        assert r["book_ts"] == want[1]
        assert r["sequence_ok"] == want[2]
        assert r["staleness_s"] == pytest.approx((at - want[1]) / S)


def test_only_changed_keeps_the_rows_whose_top_changed() -> None:
    rows = messages(seed=1, n=60)
    src = FrameSource(pl.DataFrame(), book_rows=frame(rows))
    end = max(r["ts"] for r in rows) + S
    every = pl.concat(list(book_snapshots(src, BookSpec(NAME, T0, end, 100 * MS, depth=2))))
    changed = pl.concat(list(book_snapshots(src, BookSpec(NAME, T0, end, 100 * MS, depth=2, only_changed=True))))
    levels = every.columns[8:]
    want = every.filter(pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in levels)
                        | (pl.int_range(pl.len()) == 0))
    assert changed.get_column("at").to_list() == want.get_column("at").to_list()
    assert 0 < changed.height < every.height


def test_book_seq_gaps_mark_the_points() -> None:
    rows = messages(seed=3, n=100)
    t_mid = rows[len(rows) // 2]["ts"]
    gaps = pl.DataFrame({"ts": [t_mid], "end_ts": [t_mid + 3 * S], "instrument": [NAME], "kind": ["book_seq"],
                         "status": ["resolved"]})
    src = FrameSource(pl.DataFrame(), book_rows=frame(rows), gap_rows=gaps)
    got = pl.concat(list(book_snapshots(src, BookSpec(NAME, T0, t_mid + 10 * S, 500 * MS, depth=1))))
    flagged = got.filter(pl.col("in_gap"))
    assert flagged.height > 0
    for at, book_ts in flagged.select("at", "book_ts").iter_rows():
        assert at >= t_mid
        assert book_ts < t_mid + 3 * S
