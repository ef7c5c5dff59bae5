"""Known rows for the rollover and lifecycle tests, written into the real QuestDB over ILP.

Three past days (2026-10-05..07) of trades with hand-checkable OHLC/VWAP, quotes, index
ticks, a gap and collector heartbeats, plus a heartbeat on 2026-10-08 so the journal is
"shipped past" 2026-10-07. Events go through ``store.ilp.IlpEncoder`` (the writer's own
encoder), one ILP/HTTP transaction per table.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable

from tickarchive.domain import (
    BookAction,
    BookChange,
    ConnectionHeartbeat,
    Event,
    Gap,
    GapKind,
    GapStatus,
    IndexTick,
    InstrumentEvent,
    QuoteTick,
    Side,
    TradeSource,
    TradeTick,
)
from tickarchive.store.stack.handles import QuestDBHandle

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Sender

from tickarchive.store.ilp import IlpEncoder

DAYS = (dt.date(2026, 10, 5), dt.date(2026, 10, 6), dt.date(2026, 10, 7))
CALL = "ETH-27DEC26-3000-C"
PUT = "ETH-27DEC26-2500-P"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def us(day: dt.date, h: int = 0, m: int = 0, s: float = 0.0) -> int:
    t = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.UTC) - _EPOCH
    return (t.days * 86_400 + t.seconds) * 1_000_000 + round(s * 1_000_000)


def now_us(day: dt.date, h: int = 0, m: int = 0) -> int:
    return us(day, h, m)


def trades_of(day: dt.date) -> list[TradeTick]:
    """Four CALL trades in 10:00 (OHLC 0.0450/0.0475/0.0440/0.0460) and one PUT trade."""
    k = DAYS.index(day) if day in DAYS else 9
    base = 100 * k
    spec = [
        (CALL, us(day, 10, 0, 1.5), 11 + base, 0.0450, 2.0, "buy"),
        (CALL, us(day, 10, 0, 20.0), 12 + base, 0.0475, 1.0, "sell"),
        (CALL, us(day, 10, 0, 40.0), 13 + base, 0.0440, 5.0, "sell"),
        (CALL, us(day, 10, 0, 59.9), 14 + base, 0.0460, 3.0, "buy"),
        (PUT, us(day, 11, 30, 0.25), 7 + base, 0.0100, 10.0, "buy"),
    ]
    return [
        TradeTick(instrument=i, ts_us=t, recv_ts_us=t + 1_234, trade_id=f"ETH-{day:%m%d}-{seq}", trade_seq=seq,
                  price=p, amount=a, direction=d, tick_direction=seq % 4, mark_price=p * 1.01, index_price=3001.25,
                  iv=55.5 + seq / 100, source=TradeSource.WS)
        for i, t, seq, p, a, d in spec
    ]


def quotes_of(day: dt.date, n: int = 60) -> list[QuoteTick]:
    out = []
    for j in range(n):
        inst = CALL if j % 2 == 0 else PUT
        t = us(day, 12, j // 2, 0.5)
        bid = None if j == 7 else round(0.04 + j * 0.0005, 4)
        out.append(QuoteTick(instrument=inst, ts_us=t, recv_ts_us=t + 900, bid_price=bid,
                             bid_amount=None if bid is None else 10.0 + j, ask_price=round(0.045 + j * 0.0005, 4),
                             ask_amount=5.0, mark_iv=60.0 + j / 10,
                             mark_price=round(0.0425 + j * 0.0005, 4), underlying_price=3000.5 + j,
                             underlying_index="ETH-27DEC26", delta=0.51234, state="open"))
    return out


def others_of(day: dt.date) -> list[Event]:
    ev: list[Event] = [IndexTick(index_name="eth_usd", ts_us=us(day, 9, 0, s), recv_ts_us=us(day, 9, 0, s) + 500,
                                 price=3000.0 + s) for s in range(5)]
    ev.append(Gap(kind=GapKind.DISCONNECT, instrument="*", start_us=us(day, 13, 0), end_us=us(day, 13, 0, 42.5),
                  cause="socket closed", connection="c0", status=GapStatus.RESOLVED))
    t0 = us(day, 14, 0)
    ev += [
        BookChange(instrument=CALL, ts_us=t0, recv_ts_us=t0 + 700, change_id=5000, prev_change_id=None,
                   is_snapshot=True, side=Side.BID, action=BookAction.SNAPSHOT, price=0.044, amount=12.0),
        BookChange(instrument=CALL, ts_us=t0, recv_ts_us=t0 + 700, change_id=5000, prev_change_id=None,
                   is_snapshot=True, side=Side.ASK, action=BookAction.SNAPSHOT, price=0.0465, amount=3.0),
        BookChange(instrument=CALL, ts_us=t0 + 100_000, recv_ts_us=t0 + 100_800, change_id=5007, prev_change_id=5000,
                   is_snapshot=False, side=Side.BID, action=BookAction.DELETE, price=0.044, amount=0.0),
        InstrumentEvent(instrument=CALL, ts_us=t0, recv_ts_us=t0 + 5, state="open", kind="option",
                        base_currency="ETH", quote_currency="ETH", settlement_currency="ETH", option_type="call",
                        strike=3000.0, expiration_us=us(dt.date(2026, 12, 27), 8), creation_us=us(dt.date(2026, 9, 1)),
                        tick_size=0.0005, contract_size=1.0, min_trade_amount=1.0, settlement_period="month",
                        instrument_id=123456),
    ]
    ev += [ConnectionHeartbeat(connection="c0", ts_us=us(day, 23, 59, s), connected=True, subscribed_channels=3,
                               frames_total=100 + s, last_frame_us=us(day, 23, 59, s), journal_backlog_bytes=0)
           for s in range(3)]
    return ev


def all_events(days: Iterable[dt.date] = DAYS) -> list[Event]:
    ev: list[Event] = []
    for d in days:
        ev += trades_of(d) + quotes_of(d) + others_of(d)
    last = max(days) + dt.timedelta(days=1)
    ev.append(ConnectionHeartbeat(connection="c0", ts_us=us(last, 0, 5), connected=True, subscribed_channels=3,
                                  frames_total=999, last_frame_us=us(last, 0, 5), journal_backlog_bytes=0))
    return ev


def write(questdb: QuestDBHandle, events: Iterable[Event]) -> dict[str, int]:
    """Write events over ILP/HTTP (one transaction per table) and wait until applied."""
    with Sender.from_conf(questdb.ilp_conf) as sender:
        enc = IlpEncoder(protocol_version=int(sender.protocol_version))
        enc.add_all(events)
        counts = {t: n for t, n in enc.rows.items() if n}
        for _table, (buf, _n) in enc.take().items():
            sender.flush(buf)
    questdb.wait_for_wal()
    return counts
