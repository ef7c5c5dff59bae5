"""Top-N order-book snapshots every X ms, rebuilt from stored snapshots + changes (pure).

The stored ``book_changes`` of one instrument, in (ts, change_id) order, replay the book:
the levels of a snapshot message (``is_snapshot``) replace it, every later change sets a
level (``new``/``change``) or removes it (``delete``, or amount 0). Each message's
``prev_change_id`` must equal the previous message's ``change_id``; when it does not,
the book may be wrong until the next snapshot: rows from the break up to that snapshot
carry ``sequence_ok = false`` (and, since the collector records such a break as a
``book_seq`` gap, ``in_gap`` too once gaps are marked).

At each instant ``at`` the book after every message with ``ts <= at`` is emitted: ``at``,
``instrument``, ``book_ts`` (the last message applied), ``change_id``, ``snapshot_ts``
(the snapshot the book was rebuilt from), ``staleness_s`` = at − book_ts,
``sequence_ok``, then per level ``i`` (0 = best) ``bid_i_price``, ``bid_i_amount``,
``ask_i_price``, ``ask_i_amount`` (null past the side's depth). Instants before the first
snapshot have no row. Tardis's ``book_snapshot_25_100ms`` is this with depth 25 and
100 ms, written with Tardis's column names (``tickarchive.products.tardis``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tickarchive.products.timegrid import US_PER_S

HEAD_COLUMNS: tuple[str, ...] = (
    "at",
    "instrument",
    "book_ts",
    "change_id",
    "snapshot_ts",
    "staleness_s",
    "sequence_ok",
)
TIME_COLUMNS: tuple[str, ...] = ("at", "book_ts", "snapshot_ts")
READ_COLUMNS: tuple[str, ...] = (
    "ts",
    "change_id",
    "prev_change_id",
    "is_snapshot",
    "side",
    "action",
    "price",
    "amount",
)


def level_columns(depth: int) -> list[str]:
    cols = []
    for i in range(depth):
        cols += [f"bid_{i}_price", f"bid_{i}_amount", f"ask_{i}_price", f"ask_{i}_amount"]
    return cols


def schema(depth: int) -> dict[str, pl.DataType]:
    out: dict[str, pl.DataType] = {
        "at": pl.Int64(),
        "instrument": pl.String(),
        "book_ts": pl.Int64(),
        "change_id": pl.Int64(),
        "snapshot_ts": pl.Int64(),
        "staleness_s": pl.Float64(),
        "sequence_ok": pl.Boolean(),
    }
    out.update({c: pl.Float64() for c in level_columns(depth)})
    return out


@dataclass
class BookRebuilder:
    """The book of one instrument, advanced by ``feed`` window after window."""

    instrument: str
    depth: int
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    snapshot_id: int | None = None
    snapshot_ts: int | None = None
    last_id: int | None = None
    last_ts: int | None = None
    sequence_ok: bool = True
    _top: tuple[float | None, ...] | None = None
    _dirty: bool = True
    """The levels changed since ``_top`` was taken."""

    def feed(self, rows: pl.DataFrame, instants: Sequence[int], only_changed: bool = False) -> pl.DataFrame:
        """Apply ``rows`` (this window's book changes) and emit the book at each of
        ``instants`` (ascending, each at or after every row already fed). With
        ``only_changed`` an instant whose top N equals the previous emitted one is
        skipped (Tardis's emit-on-change)."""
        rows = rows.select(list(READ_COLUMNS)).sort(
            "ts", "change_id", "is_snapshot", descending=[False, False, True], maintain_order=True
        )
        ts = rows.get_column("ts").to_numpy()
        cid = rows.get_column("change_id").to_list()
        prev = rows.get_column("prev_change_id").to_list()
        snap = rows.get_column("is_snapshot").to_list()
        side = rows.get_column("side").to_list()
        action = rows.get_column("action").to_list()
        price = rows.get_column("price").to_list()
        amount = rows.get_column("amount").to_list()
        out: list[tuple[object, ...]] = []
        pos = 0
        ends = np.searchsorted(ts, np.asarray(instants, dtype=np.int64), side="right").tolist()
        for at, end in zip(instants, ends, strict=True):
            for i in range(pos, int(end)):
                self._apply(int(ts[i]), cid[i], prev[i], snap[i], side[i], action[i], price[i], amount[i])
            pos = int(end)
            if self.snapshot_ts is None or self.last_ts is None:
                continue
            if self._dirty or self._top is None:
                top = self._levels()
                self._dirty = False
                if only_changed and top == self._top:
                    continue
                self._top = top
            elif only_changed:
                continue
            assert self._top is not None
            out.append(
                (at, self.instrument, self.last_ts, self.last_id, self.snapshot_ts, (at - self.last_ts) / US_PER_S,
                 self.sequence_ok, *self._top)
            )
        for i in range(pos, len(cid)):  # rows after the last instant of this window
            self._apply(int(ts[i]), cid[i], prev[i], snap[i], side[i], action[i], price[i], amount[i])
        return pl.DataFrame(out, schema=schema(self.depth), orient="row")

    def _apply(
        self, ts: int, cid: int, prev: int | None, is_snap: bool, side: str, action: str, price: float, amount: float
    ) -> None:
        self._dirty = True
        if is_snap:
            if self.snapshot_id != cid or self.last_id != cid:
                if self.snapshot_id != cid:
                    self.bids, self.asks = {}, {}
                self.snapshot_id, self.snapshot_ts = cid, ts
                self.sequence_ok = True
            levels = self.bids if side == "bid" else self.asks
            if amount > 0:
                levels[price] = amount
            self.last_id, self.last_ts = cid, ts
            return
        if self.snapshot_id is None or self.last_id is None or cid <= self.snapshot_id:
            return  # before the first snapshot, or part of the message the snapshot already holds
        if cid != self.last_id:
            if prev is not None and prev != self.last_id:
                self.sequence_ok = False
            self.last_id = cid
        self.last_ts = ts
        levels = self.bids if side == "bid" else self.asks
        if action == "delete" or amount == 0:
            levels.pop(price, None)
        else:
            levels[price] = amount

    def _levels(self) -> tuple[float | None, ...]:
        bids = sorted(self.bids.items(), key=lambda kv: -kv[0])[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        out: list[float | None] = []
        for i in range(self.depth):
            b = bids[i] if i < len(bids) else (None, None)
            a = asks[i] if i < len(asks) else (None, None)
            out += [b[0], b[1], a[0], a[1]]
        return tuple(out)
