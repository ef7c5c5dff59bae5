"""Known inputs for the API tests: three past days (2026-10-05..07) of quotes, trades and
book changes for a few ETH options (one expires on 2026-10-06 08:00) and a BTC option,
written into the real QuestDB through the collector's own ILP encoder, plus the
independent expectations (last quote per instrument, book at an instant) computed here
from the inputs alone.
"""

from __future__ import annotations

import datetime as dt
import random
import warnings
from collections.abc import Iterable, Sequence

from tickarchive.domain import BookAction, BookChange, ConnectionHeartbeat, Event, QuoteTick, Side, TradeTick
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.stack.handles import QuestDBHandle

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Sender

DAYS = (dt.date(2026, 10, 5), dt.date(2026, 10, 6), dt.date(2026, 10, 7))
ETH = ("ETH-30OCT26-3000-C", "ETH-30OCT26-3000-P", "ETH-27NOV26-3500-C", "ETH-6OCT26-2500-C")
BTC = "BTC-27NOV26-90000-C"
INSTRUMENTS = (*ETH, BTC)
BOOK_INSTRUMENT = "ETH-30OCT26-3000-C"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def us(day: dt.date, h: int = 0, m: int = 0, s: float = 0.0) -> int:
    t = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.UTC) - _EPOCH
    return (t.days * 86_400 + t.seconds) * 1_000_000 + round(s * 1_000_000)


def quotes(per_day: int = 30, seed: int = 7) -> list[QuoteTick]:
    rng = random.Random(seed)
    out = []
    for day in DAYS:
        for inst in INSTRUMENTS:
            times = sorted(rng.sample(range(86_400_000), per_day))
            mid = rng.uniform(0.01, 0.2)
            for ms in times:
                mid = max(0.0005, mid + rng.choice((-1, 1)) * 0.0005)
                ts = us(day) + ms * 1000
                out.append(
                    QuoteTick(
                        instrument=inst,
                        ts_us=ts,
                        recv_ts_us=ts + rng.randrange(200, 5000),
                        bid_price=round(mid - 0.0005, 4),
                        bid_amount=float(rng.randrange(1, 50)),
                        ask_price=round(mid + 0.0005, 4),
                        ask_amount=float(rng.randrange(1, 50)),
                        mark_iv=round(rng.uniform(40, 90), 2),
                        mark_price=round(mid, 4),
                        underlying_price=round(rng.uniform(2400, 2600), 2),
                        underlying_index="ETH-30OCT26" if inst.startswith("ETH") else "index_price",
                        delta=round(rng.uniform(-1, 1), 5),
                        open_interest=None if rng.random() < 0.2 else float(rng.randrange(0, 900)),
                        state="open",
                    )
                )
    return out


def trades(per_day: int = 12, seed: int = 8) -> list[TradeTick]:
    rng = random.Random(seed)
    out = []
    seq = {inst: 100 for inst in INSTRUMENTS}
    for day in DAYS:
        for inst in INSTRUMENTS:
            times = sorted(rng.sample(range(86_400_000), per_day))
            for ms in times:
                seq[inst] += 1
                ts = us(day) + ms * 1000
                out.append(
                    TradeTick(
                        instrument=inst,
                        ts_us=ts,
                        recv_ts_us=ts + 1500,
                        trade_id=f"ETH-{seq[inst]}{INSTRUMENTS.index(inst)}",
                        trade_seq=seq[inst],
                        price=round(rng.uniform(0.01, 0.2), 4),
                        amount=float(rng.randrange(1, 30)),
                        direction=rng.choice(("buy", "sell")),
                        tick_direction=rng.randrange(0, 4),
                        iv=round(rng.uniform(40, 90), 2),
                        index_price=2500.0,
                    )
                )
    return out


def book(seed: int = 9, for_instrument: str = BOOK_INSTRUMENT) -> list[BookChange]:
    """Per day for ``for_instrument``: a snapshot at 00:00:01 then 60 change messages."""
    rng = random.Random(seed)
    out: list[BookChange] = []
    change_id = 1000
    for day in DAYS:
        t0 = us(day, 0, 0, 1.0)
        change_id += 7
        for side, prices in (("bid", (0.05, 0.049, 0.048)), ("ask", (0.051, 0.052, 0.053))):
            for px in prices:
                out.append(
                    BookChange(
                        for_instrument,
                        t0,
                        t0 + 900,
                        change_id,
                        None,
                        True,
                        Side(side),
                        BookAction.SNAPSHOT,
                        px,
                        float(rng.randrange(1, 40)),
                    )
                )
        prev = change_id
        for k in range(60):
            ts = t0 + (k + 1) * 600_000_000  # every 10 minutes
            change_id += rng.randrange(1, 5)
            side = rng.choice(("bid", "ask"))
            px = round((0.045 if side == "bid" else 0.051) + 0.001 * rng.randrange(0, 7), 3)
            action = rng.choice(("new", "change", "delete"))
            amount = 0.0 if action == "delete" else float(rng.randrange(1, 40))
            out.append(
                BookChange(
                    for_instrument, ts, ts + 900, change_id, prev, False, Side(side), BookAction(action), px, amount
                )
            )
            prev = change_id
    return out


def heartbeat() -> ConnectionHeartbeat:
    t = us(dt.date(2026, 10, 8), 0, 0, 5.0)
    return ConnectionHeartbeat(
        connection="c0",
        ts_us=t,
        connected=True,
        subscribed_channels=3,
        frames_total=9,
        last_frame_us=t,
        journal_backlog_bytes=0,
    )


def all_events() -> list[Event]:
    return [*quotes(), *trades(), *book(), heartbeat()]


def write(questdb: QuestDBHandle, events: Iterable[Event]) -> dict[str, int]:
    with Sender.from_conf(questdb.ilp_conf) as sender:
        enc = IlpEncoder(protocol_version=int(sender.protocol_version))
        enc.add_all(events)
        counts = {t: n for t, n in enc.rows.items() if n}
        for _table, (buf, _n) in enc.take().items():
            sender.flush(buf)
    questdb.wait_for_wal()
    return counts


# -- independent expectations ----------------------------------------------------------


def expected_chain(qs: Sequence[QuoteTick], currency: str, at_us: int, lookback_us: int) -> dict[str, QuoteTick]:
    """Last quote per live option of ``currency`` with at - lookback <= ts <= at."""
    out: dict[str, QuoteTick] = {}
    for q in sorted(qs, key=lambda q: q.ts_us):
        if not q.instrument.startswith(currency + "-") or not at_us - lookback_us <= q.ts_us <= at_us:
            continue
        if q.instrument == "ETH-6OCT26-2500-C" and at_us >= us(dt.date(2026, 10, 6), 8):
            continue
        out[q.instrument] = q
    return out


def expected_book(changes: Sequence[BookChange], at_us: int) -> tuple[list[list[float]], list[list[float]]]:
    rows = sorted((c for c in changes if c.ts_us <= at_us), key=lambda c: (c.ts_us, c.change_id))
    snap_ts = max(c.ts_us for c in rows if c.is_snapshot)
    book: dict[str, dict[float, float]] = {"bid": {}, "ask": {}}
    for c in rows:
        if c.ts_us < snap_ts:
            continue
        if c.action is BookAction.DELETE:
            book[c.side.value].pop(c.price, None)
        else:
            book[c.side.value][c.price] = c.amount
    bids = [[p, a] for p, a in sorted(book["bid"].items(), reverse=True)]
    asks = [[p, a] for p, a in sorted(book["ask"].items())]
    return bids, asks
