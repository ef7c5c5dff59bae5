"""One UTC day of quotes, trades and gaps with planted defects, and loaders for QuestDB
(ILP over HTTP) and the warm store (INSERT): the quality report's tests render it and
compare the report's figures with counts made here, independently, from the same rows.

Planted on DAY (2026-11-20):
- quotes: 3 crossed (bid > ask), 2 locked (bid = ask), 2 with a price or size ≤ 0, 1 received
  after a newer quote of its instrument (ts goes backwards in receive order);
- trades: seq 105 and 106 of A missing (18 of 20), 1 trade with price 0, 1 received late
  (ts backwards), 1 repeated trade id on B (a re-delivery with another ts);
- volume: the collector ran through the day before (heartbeats), so every 24 h window is
  comparable: A's last volume_24h (23:10) equals its trades in (23:10 the day
  before, 23:10] — the day's 10.0 plus 7.0 the day before (ok); B's (11:45) does not
  (mismatch: its trades come later that day);
- rows just outside the day on both sides, and a gap of the next day, which must not count.

Planted on DAY2 (2026-11-25), a *partial* day as a newcomer's demo makes it: collection
starts at 09:30 and the report is made at 15:20 (NOW2), so hours 00–08 and 16–23 are not
collected; P2 is silent in hour 12, F (a perpetual) stops quoting after 11:59, L is listed at
12:00 (an ``instruments`` row says so: it cannot be missing before); two of P1's
trades were backfilled after a gap (received at 14:00, long after later trades): not
flagged; every 24 h volume window touches hours before collection began: none compared.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import psycopg
from questdb import Sender, TimestampMicros

from tickarchive.ops.quality.model import GapRow, QuoteRow, TradeRow

HeartbeatRow = tuple[int, str]
"""(ts_us, connection)"""

DAY = dt.date(2026, 11, 20)
A = "ETH-27DEC26-4000-C"
B = "ETH-27DEC26-3000-P"
S = 1_000_000
H = 3600 * S
T0 = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp()) * S
NEXT_DAY = T0 + 24 * H

PLANTED = {
    "crossed_quote": 3,
    "locked_quote": 2,
    "nonpositive_quote": 2,
    "quote_ts_backwards": 1,
    "nonpositive_trade": 1,
    "duplicate_trade_id": 1,
    "trade_ts_backwards": 1,
}


def _q(ts: int, inst: str, bid: float | None, ask: float | None, *, bid_amount: float | None = 10.0,
       ask_amount: float | None = 12.0, volume: float | None = 99.0, recv: int | None = None) -> QuoteRow:
    return QuoteRow(ts, ts + 40_000 if recv is None else recv, inst, bid, bid_amount, ask, ask_amount, volume)


def _quotes() -> list[QuoteRow]:
    rows = []
    # A: one quote per hour at :10, three more in hour 5; the last (23:10) carries volume 17.0
    for h in range(24):
        rows.append(_q(T0 + h * H + 600 * S, A, 0.05, 0.06, volume=17.0 if h == 23 else 99.0))
    rows += [_q(T0 + 5 * H + m * 60 * S, A, 0.05, 0.06) for m in (20, 30, 40)]
    # B: two quotes per hour in hours 0..11; the last (11:45) carries volume 5.0
    for h in range(12):
        rows.append(_q(T0 + h * H + 15 * 60 * S, B, 0.10, 0.11))
        rows.append(_q(T0 + h * H + 45 * 60 * S, B, 0.10, 0.11, volume=5.0 if h == 11 else 99.0))
    # crossed: three A quotes in hour 7; locked: two B quotes in hour 3
    rows += [_q(T0 + 7 * H + m * S, A, 0.07, 0.06) for m in (1, 2, 3)]
    rows += [_q(T0 + 3 * H + m * S, B, 0.11, 0.11) for m in (1, 2)]
    # non-positive: ask size 0 with an empty bid side; bid price 0
    rows.append(_q(T0 + 8 * H, A, None, 0.06, bid_amount=None, ask_amount=0.0))
    rows.append(_q(T0 + 9 * H, B, 0.0, 0.11))
    # A quote with ts 10:09:59 arriving after the 10:10:00 one (recv 10:10:01)
    rows.append(_q(T0 + 10 * H + 599 * S, A, 0.05, 0.06, recv=T0 + 10 * H + 601 * S))
    # outside the day
    rows.append(_q(T0 - 1000, A, 0.5, 0.1))
    rows.append(_q(NEXT_DAY, A, 0.5, 0.1))
    return rows


def _t(ts: int, inst: str, tid: str, seq: int, price: float, amount: float, recv: int | None = None) -> TradeRow:
    return TradeRow(ts, ts + 30_000 if recv is None else recv, inst, tid, seq, price, amount)


def _trades() -> list[TradeRow]:
    rows = []
    seqs = [s for s in range(100, 120) if s not in (105, 106)]  # 18 trades
    for i, seq in enumerate(seqs):
        amount = 1.5 if i == 0 else 0.5  # 1.5 + 17 * 0.5 = 10.0
        price = 0.0 if seq == 110 else 0.055
        ts = T0 + (2 + i) * H // 2
        recv = None
        if seq == 113:  # received 10 minutes late, after seq 114
            recv = T0 + (2 + i + 1) * H // 2 + 600 * S
        rows.append(_t(ts, A, f"ETH-{9000 + seq}", seq, price, amount, recv))
    for seq in (7, 8, 9):
        rows.append(_t(T0 + 14 * H + seq * S, B, f"ETH-{8000 + seq}", seq, 0.105, 1.0))
    # a re-delivery of B's seq 7 with another ts: same trade id, flagged, not summed twice
    rows.append(_t(T0 + 15 * H, B, "ETH-8007", 7, 0.105, 1.0))
    rows.append(_t(T0 - 5 * S, A, "ETH-1", 1, 0.05, 7.0))  # the day before
    return rows


def _gaps() -> list[GapRow]:
    return [
        GapRow(T0 + 10 * H, T0 + 10 * H + 30 * S, "*", "disconnect", "socket closed 1006", "c0", "resolved"),
        GapRow(T0 + 12 * H, T0 + 12 * H + 300 * S, A, "trade_seq", "seq 105..106 missing", "c1", "backfilled"),
        GapRow(T0 - 60 * S, T0 + 60 * S, B, "stale", "no ticker for 10 s", "c1", "unrecoverable"),
        GapRow(T0 + 23 * H, None, B, "stale", "no ticker for 10 s", "c1", "open"),
        GapRow(NEXT_DAY + 5 * H, NEXT_DAY + 5 * H + S, A, "stale", "next day", "c1", "resolved"),
    ]


QUOTES = _quotes()
TRADES = _trades()
GAPS = _gaps()
HEARTBEATS: list[HeartbeatRow] = [(T0 - 24 * H + h * H, "c0") for h in range(24)]
"""The collector ran through the day before DAY (one heartbeat an hour stands for its 86,400)."""

# ---- DAY2: a partial day ------------------------------------------------------------------

DAY2 = dt.date(2026, 11, 25)
T2 = int(dt.datetime(2026, 11, 25, tzinfo=dt.UTC).timestamp()) * S
P1 = "ETH-28NOV26-3000-C"
P2 = "ETH-28NOV26-3200-C"
F = "ETH-PERPETUAL"
L = "ETH-4DEC26-3000-C"
LISTED2 = T2 + 12 * H
START2 = T2 + 9 * H + 30 * 60 * S
NOW2 = T2 + 15 * H + 20 * 60 * S
COLLECTED2 = tuple(9 <= h <= 15 for h in range(24))


def _quotes2() -> list[QuoteRow]:
    rows = []
    for ts in range(START2, NOW2, 600 * S):  # every 10 minutes from 09:30 to 15:10
        hour = (ts - T2) // H
        rows.append(_q(ts, P1, 0.05, 0.06, volume=50.0))
        if hour != 12:
            rows.append(_q(ts + S, P2, 0.02, 0.03, volume=50.0))
        if hour < 12:
            rows.append(_q(ts + 2 * S, F, 3000.0, 3000.5, volume=50.0))
        else:
            rows.append(_q(ts + 3 * S, L, 0.01, 0.02, volume=0.0))
    return rows


def _trades2() -> list[TradeRow]:
    rows = []
    for seq in range(1, 11):
        ts = T2 + 10 * H + seq * 5 * 60 * S  # 10:05 ... 10:50
        if seq in (5, 6):  # inside the 10:35-10:55 gap: fetched from the history API at 14:00
            rows.append(TradeRow(ts, T2 + 14 * H, P1, f"ETH-7{seq:03d}", seq, 0.055, 1.0, "backfill"))
        else:
            rows.append(TradeRow(ts, ts + 30_000, P1, f"ETH-7{seq:03d}", seq, 0.055, 1.0, "ws"))
    return rows


QUOTES2 = _quotes2()
TRADES2 = _trades2()
GAPS2 = [GapRow(T2 + 10 * H + 35 * 60 * S, T2 + 10 * H + 55 * 60 * S, P1, "trade_seq", "seq 5..6 missing", "c1",
                "backfilled")]
HEARTBEATS2: list[HeartbeatRow] = [(ts, "c0") for ts in range(START2, NOW2, 60 * S)]
LISTING2 = (LISTED2, L)
"""(ts, instrument): the row the collector writes for L's ``instrument.state`` notification
``open`` (a notification carries no creation or expiration: its time is the listing)."""


def in_day(ts_us: int) -> bool:
    return T0 <= ts_us < NEXT_DAY


def expected_coverage() -> dict[tuple[str, int], int]:
    """Quotes per (instrument, hour), counted straight from the rows."""
    return dict(Counter((q.instrument, (q.ts_us - T0) // H) for q in QUOTES if in_day(q.ts_us)))


EXPECTED_GAP_SECONDS = {"disconnect": 30.0, "trade_seq": 300.0, "stale": 60.0 + 3600.0}


def _ts(us: int) -> TimestampMicros:
    return TimestampMicros(us)


def load_questdb(ilp_conf: str) -> None:
    with Sender.from_conf(ilp_conf) as sender:
        for q in QUOTES + QUOTES2:
            cols: dict[str, Any] = {"recv_ts": _ts(q.recv_us)}
            for name in ("bid_price", "bid_amount", "ask_price", "ask_amount", "volume_24h"):
                value = getattr(q, name)
                if value is not None:
                    cols[name] = value
            sender.row("quotes", symbols={"instrument": q.instrument}, columns=cols, at=_ts(q.ts_us))
        for t in TRADES + TRADES2:
            sender.row(
                "trades",
                symbols={"instrument": t.instrument, "direction": "buy", "source": t.source},
                columns={"recv_ts": _ts(t.recv_us), "trade_id": t.trade_id, "trade_seq": t.trade_seq,
                         "price": t.price, "amount": t.amount},
                at=_ts(t.ts_us),
            )
        for ts, connection in HEARTBEATS + HEARTBEATS2:
            sender.row(
                "collector_heartbeats", symbols={"connection": connection},
                columns={"connected": True, "subscribed_channels": 3, "frames_total": 1, "journal_backlog_bytes": 0},
                at=_ts(ts),
            )
        ts, inst = LISTING2
        sender.row("instruments", symbols={"instrument": inst, "state": "open"}, columns={"recv_ts": _ts(ts)},
                   at=_ts(ts))
        for g in GAPS + GAPS2:
            gcols: dict[str, Any] = {"cause": g.cause}
            if g.end_us is not None:
                gcols["end_ts"] = _ts(g.end_us)
            sender.row(
                "gaps",
                symbols={"instrument": g.instrument, "kind": g.kind, "connection": g.connection, "status": g.status},
                columns=gcols, at=_ts(g.start_us),
            )
        sender.flush()


def _dt(us: int | None) -> dt.datetime | None:
    return None if us is None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def load_warm(conn: psycopg.Connection[Any], partitioned: bool) -> None:
    """Insert every row; ``partitioned``: the plain-PostgreSQL dialect (daily partitions first)."""
    with conn.cursor() as cur:
        if partitioned:
            for table in ("quotes", "trades", "gaps", "collector_heartbeats"):
                for day in (DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)):
                    cur.execute("SELECT tickarchive_ensure_partition(%s::regclass, %s)", (table, day))
        cur.executemany(
            "INSERT INTO quotes (ts, recv_ts, instrument, bid_price, bid_amount, ask_price, ask_amount, volume_24h) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(_dt(q.ts_us), _dt(q.recv_us), q.instrument, q.bid_price, q.bid_amount, q.ask_price, q.ask_amount,
              q.volume_24h) for q in QUOTES],
        )
        cur.executemany(
            "INSERT INTO trades (ts, recv_ts, instrument, trade_id, trade_seq, price, amount, direction, source) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'buy', 'ws')",
            [(_dt(t.ts_us), _dt(t.recv_us), t.instrument, t.trade_id, t.trade_seq, t.price, t.amount)
             for t in TRADES],
        )
        cur.executemany(
            "INSERT INTO gaps (ts, end_ts, instrument, kind, cause, connection, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(_dt(g.start_us), _dt(g.end_us), g.instrument, g.kind, g.cause, g.connection, g.status) for g in GAPS],
        )
        cur.executemany(
            "INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
            "journal_backlog_bytes) VALUES (%s, %s, true, 3, 1, 0)",
            [(_dt(ts), connection) for ts, connection in HEARTBEATS],
        )
