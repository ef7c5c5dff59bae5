"""Market-data streams: book change_id chains, trade_seq continuity, ticker timestamps,
and the send log matching exactly what a client received."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim import sendlog as sl

from .conftest import client, running, until


def _names(reply: dict[str, Any]) -> list[str]:
    return [i["instrument_name"] for i in reply["result"]]


async def test_streams_are_consistent_and_match_the_send_log(cfg: SimConfig) -> None:
    async with running(cfg.replace(rate_per_s=3000, trades_per_s=80)) as sim, client(sim) as c:
        names = _names(await c.call("public/get_instruments", {"currency": "ETH", "kind": "option"}))
        channels = [f"ticker.{n}.100ms" for n in names] + [f"book.{n}.100ms" for n in names]
        channels += ["trades.option.ETH.100ms", f"trades.{names[len(names) // 2]}.100ms"]
        assert len((await c.call("public/subscribe", {"channels": channels}))["result"]) == len(channels)
        seen = {"ticker.": 0, "book.": 0, "trades.option.ETH": 0}
        counted = [0]

        def enough(notes: list[dict[str, Any]]) -> bool:
            for n in notes[counted[0]:]:
                if n.get("method") == "subscription":
                    ch = n["params"]["channel"]
                    for prefix in seen:
                        if ch.startswith(prefix):
                            seen[prefix] += len(n["params"]["data"]) if prefix.startswith("trades.") else 1
            counted[0] = len(notes)
            return seen["ticker."] > 300 and seen["book."] > 2 * len(names) + 150 and seen["trades.option.ETH"] > 50

        await c.collect(60.0, until=enough)  # a sample of every stream (the deadline only bounds a failure)
        await c.call("public/unsubscribe_all")
        # the simulator logs a frame as sent once written: every frame received is logged
        conn = sim.connections["c1"]
        await until(lambda: conn.frames_sent >= len(c.raw), 60.0, "the send log of every frame received")

        # book: a snapshot first, then changes chained by prev_change_id
        books: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for n in c.channel_notes("book."):
            books[n["params"]["data"]["instrument_name"]].append(n["params"]["data"])
        assert len(books) == len(names)
        gaps_seen = 0
        changes = 0
        for msgs in books.values():
            assert msgs[0]["type"] == "snapshot"
            assert "prev_change_id" not in msgs[0]
            for prev, cur in itertools.pairwise(msgs):
                assert cur["type"] == "change"
                assert cur["prev_change_id"] == prev["change_id"]
                assert cur["change_id"] > prev["change_id"]
                assert cur["timestamp"] >= prev["timestamp"]
                gaps_seen += cur["change_id"] - prev["change_id"] > 1
                changes += 1
                for action, price, amount in cur["bids"] + cur["asks"]:
                    assert action in ("new", "change", "delete")
                    assert isinstance(price, float)
                    assert isinstance(amount, float)
                    assert (amount == 0.0) == (action == "delete")
        assert changes > 100
        assert gaps_seen > changes // 2  # ids increase but are not consecutive

        # tickers: strictly increasing timestamps per instrument, top of book = book top
        last_ts: dict[str, int] = {}
        tickers = c.channel_notes("ticker.")
        assert len(tickers) > 200
        for n in tickers:
            d = n["params"]["data"]
            assert d["timestamp"] > last_ts.get(d["instrument_name"], 0)
            last_ts[d["instrument_name"]] = d["timestamp"]
            bid, ask = d["best_bid_price"], d["best_ask_price"]
            if d["best_bid_amount"] and d["best_ask_amount"]:
                assert bid < ask
                assert bid <= d["mark_price"] <= ask
            if not d["best_bid_amount"]:  # an empty side: 0.0 price, amount and IV
                assert (bid, d["bid_iv"]) == (0.0, 0.0)
            if not d["best_ask_amount"]:
                assert (ask, d["ask_iv"]) == (0.0, 0.0)
            assert 15.0 <= d["mark_iv"] <= 300.0

        # trades: consecutive trade_seq per instrument, string ids unique
        seqs: dict[str, list[int]] = defaultdict(list)
        ids = set()
        currency_trades = [t for n in c.channel_notes("trades.option.ETH") for t in n["params"]["data"]]
        assert len(currency_trades) > 40
        for t in currency_trades:
            seqs[t["instrument_name"]].append(t["trade_seq"])
            assert isinstance(t["trade_id"], str)
            assert t["trade_id"].startswith("ETH-")
            ids.add(t["trade_id"])
            assert t["direction"] in ("buy", "sell")
            assert t["tick_direction"] in (0, 1, 2, 3)
        assert len(ids) == len(currency_trades)
        for seq in seqs.values():
            assert seq == list(range(seq[0], seq[0] + len(seq)))

        # the send log holds exactly what arrived (all rows 'sent': nothing else happened)
        got_quotes = {(d["instrument_name"], d["timestamp"] * 1000) for d in (n["params"]["data"] for n in tickers)}
        assert sim.send_log.keys("quotes", status=sl.SENT, connection="c1") == got_quotes
        got_books = {
            (
                d["instrument_name"],
                d["change_id"],
                d.get("prev_change_id"),
                # a snapshot's rows: its levels, one 'empty' row for a side it shows empty
                max(len(d["bids"]), 1) + max(len(d["asks"]), 1) if d["type"] == "snapshot"
                else len(d["bids"]) + len(d["asks"]),
                d["timestamp"] * 1000,
            )
            for msgs in books.values()
            for d in msgs
        }
        assert sim.send_log.keys("book_changes", connection="c1") == got_books
        got_trades = {
            (t["instrument_name"], t["trade_id"], t["trade_seq"], t["timestamp"] * 1000)
            for n in c.channel_notes("trades.")
            for t in n["params"]["data"]
        }
        assert sim.send_log.keys("trades", connection="c1") == got_trades
        assert sim.send_log.keys("trades", connection="c1", channel="trades.option.ETH.100ms") == {
            (t["instrument_name"], t["trade_id"], t["trade_seq"], t["timestamp"] * 1000) for t in currency_trades
        }
        summary = sim.send_log.summary(per_instrument=True)
        assert set(summary["tables"]["quotes"]) == {"sent"}
        assert summary["tables"]["trades"]["sent"] == len(
            [t for n in c.channel_notes("trades.") for t in n["params"]["data"]]
        )
        for inst, seq in seqs.items():
            assert summary["trade_seq"][inst]["min"] == seq[0]
            assert summary["trade_seq"][inst]["max"] == seq[-1]
        assert sum(summary["per_instrument"]["quotes"].values()) == len(tickers)


async def test_high_rate_keeps_unique_timestamps(tmp_path) -> None:
    """At rates that need the per-channel spacing lowered below 100 ms, each channel
    still never repeats a millisecond timestamp."""
    from .conftest import base_config

    cfg = base_config(tmp_path, instruments=20, rate_per_s=3000, trades_per_s=0)
    assert cfg.effective_min_interval_ms < 100
    async with running(cfg) as sim, client(sim) as c:
        names = _names(await c.call("public/get_instruments", {"currency": "ETH"}))
        await c.call("public/subscribe", {"channels": [f"ticker.{n}.100ms" for n in names]})
        await c.collect(60.0, until=lambda notes: len(notes) > 1000)  # the deadline only bounds a failure
    per_inst: dict[str, list[int]] = defaultdict(list)
    for n in c.channel_notes("ticker."):
        per_inst[n["params"]["data"]["instrument_name"]].append(n["params"]["data"]["timestamp"])
    assert sum(len(v) for v in per_inst.values()) > 800
    for ts in per_inst.values():
        assert all(b > a for a, b in itertools.pairwise(ts))
    assert sim.steps > 50
