"""The project's parser (``tickarchive.venues.deribit.normalize``) reads real and simulated frames the same
way, and what it extracts from the simulator's frames is exactly the send log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.real import REAL, TARDIS, WS_CAPTURE_APRIL, capture_lines, jsonl_frames
from tickarchive.domain import BookChange, QuoteTick, TradeTick
from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.venue import Malformed
from tickarchive.venues.deribit.normalize import Heartbeat, Notification, parse_frame

from .conftest import client, running


def _populated(obj: Any) -> frozenset[str]:
    return frozenset(f for f in obj.__struct_fields__ if getattr(obj, f) is not None)


def _enough_parsed(raw: list[str], fullest: frozenset[str]) -> Callable[[list[dict[str, Any]]], bool]:
    """A ``collect`` condition over the frames received (``raw``), parsed as the test does:
    more than 100 quotes, 100 book rows and 20 trades, a book change, and a quote that fills
    every field ``fullest`` names."""
    seen = {"quotes": 0, "books": 0, "trades": 0, "changes": 0, "full": 0}
    parsed = 0

    def enough(_notes: list[dict[str, Any]]) -> bool:
        nonlocal parsed
        for text in raw[parsed:]:
            p = parse_frame(text, 1)
            if isinstance(p, Notification):
                for e in p.events:
                    if isinstance(e, QuoteTick):
                        seen["quotes"] += 1
                        seen["full"] += _populated(e) == fullest
                    elif isinstance(e, BookChange):
                        seen["books"] += 1
                        seen["changes"] += not e.is_snapshot
                    elif isinstance(e, TradeTick):
                        seen["trades"] += 1
        parsed = len(raw)
        return (seen["quotes"] > 100 and seen["books"] > 100 and seen["trades"] > 20 and seen["changes"] > 0
                and seen["full"] > 0)

    return enough


def _real_notifications() -> list[Notification]:
    out = []
    for line in (REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0").read_bytes().splitlines()[3:]:
        if line.strip():
            parsed = parse_frame(line.split(b": ", 1)[1], 0)
            assert isinstance(parsed, Notification), parsed
            out.append(parsed)
    return out


def _more_real_option_quotes() -> list[QuoteTick]:
    frames = [f for _ts, f in capture_lines(WS_CAPTURE_APRIL)] + jsonl_frames(TARDIS)
    out = []
    for frame in frames:
        parsed = parse_frame(frame, 0)
        if isinstance(parsed, Notification) and parsed.channel.startswith("ticker.") and parsed.channel.count("-") == 3:
            out += [e for e in parsed.events if isinstance(e, QuoteTick)]
    assert len(out) > 90
    return out


async def test_parser_reads_real_and_simulated_frames_alike(cfg: SimConfig) -> None:
    real = _real_notifications()
    real_quotes = [e for n in real for e in n.events if isinstance(e, QuoteTick)]
    real_books = [e for n in real for e in n.events if isinstance(e, BookChange)]
    assert len(real_quotes) == 89
    assert real_books

    real_sets = [_populated(q) for q in real_quotes]
    # stats.volume_usd came after 2021 (on options by 2024): the simulator sends it
    fullest_real = frozenset().union(*real_sets) | {"volume_usd_24h"}
    async with running(cfg.replace(trades_per_s=100)) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        channels = [f"ticker.{n}.100ms" for n in names] + [f"book.{n}.100ms" for n in names]
        channels += ["trades.option.ETH.100ms", "deribit_price_index.eth_usd", "instrument.state.option.ETH"]
        await c.call("public/subscribe", {"channels": channels})
        # until what is asserted below arrived (counts, not 1.5 s of stream; the deadline
        # only bounds a failure)
        await c.collect(120.0, until=_enough_parsed(c.raw, fullest_real))
        sim.inject("malformed", count=4)
        sim.inject("extra_fields", count=5)
        await c.collect(0.3)
        await c.call("public/unsubscribe_all")

    parsed = [parse_frame(t, 1) for t in c.raw]
    malformed = [p for p in parsed if isinstance(p, Malformed)]
    assert len(malformed) == 4  # exactly the injected ones; extra fields parse fine
    notes = [p for p in parsed if isinstance(p, Notification)]
    quotes = [e for n in notes for e in n.events if isinstance(e, QuoteTick)]
    books = [e for n in notes for e in n.events if isinstance(e, BookChange)]
    trades = [e for n in notes for e in n.events if isinstance(e, TradeTick)]
    assert len(quotes) > 100
    assert len(books) > 100
    assert len(trades) > 20
    assert not [p for p in parsed if isinstance(p, Heartbeat)]

    # the same QuoteTick fields come out of real and simulated tickers: the fullest
    # simulated tick fills what the fullest real one fills, none fills more, and every one
    # fills what every real one fills (a side may be empty on both)
    sim_sets = {_populated(q) for q in quotes}
    assert fullest_real in sim_sets
    assert all(s <= fullest_real for s in sim_sets)
    # what every real option ticker fills (the 2021-04 capture and the tardis messages
    # included: a new listing has no settlement_price, an expired option no greeks' IVs)
    every_real = frozenset.intersection(*real_sets, *(_populated(q) for q in _more_real_option_quotes()))
    assert all(s >= every_real for s in sim_sets)
    # book levels: same fields; snapshot and change rows both present
    assert {_populated(b) for b in books} == {_populated(b) for b in real_books}
    assert {b.is_snapshot for b in books} == {True, False}
    # option trades: every field the archive keeps for a trade, including the IV
    assert {_populated(t) for t in trades} == {
        frozenset(
            {
                "instrument", "ts_us", "recv_ts_us", "trade_id", "trade_seq", "price", "amount", "direction",
                "tick_direction", "mark_price", "index_price", "iv", "contracts", "source",
            }
        )
    }  # fmt: skip

    # what the parser extracts is exactly what the send log says was sent
    assert {(q.instrument, q.ts_us) for q in quotes} == sim.send_log.keys(sl.QUOTES)
    assert {(t.instrument, t.trade_id, t.trade_seq, t.ts_us) for t in trades} == sim.send_log.keys(sl.TRADES)
    messages = {(b.instrument, b.change_id, b.prev_change_id, b.ts_us) for b in books}
    logged = {(i, cid, prev, ts) for i, cid, prev, _n, ts in sim.send_log.keys(sl.BOOK)}
    assert messages == logged  # every message has rows: an empty snapshot side is one 'empty' row
    rows = sum(n for *_k, n, _ts in sim.send_log.keys(sl.BOOK))
    assert rows == len(books)
