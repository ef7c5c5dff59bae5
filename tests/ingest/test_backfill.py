"""Backfill: history pages (has_more), only trades not already stored, source=backfill."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.test_collector import sim_config, wait_for
from tickarchive.domain import TradeSource, TradeTick
from tickarchive.ingest.backfill import Backfiller, parse_time_us, run_backfill
from tickarchive.ingest.errors import BackfillError
from tickarchive.loadtest.sim import Simulator
from tickarchive.settings import Settings
from tickarchive.store.ilp import IlpEncoder
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.venue import TradeWindow as Window
from tickarchive.venues import deribit

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Sender


def test_parse_time_us() -> None:
    assert parse_time_us("1795502789112000") == 1795502789112000
    assert parse_time_us("2026-11-24T06:00:00.25Z") == 1795499999 * 1_000_000 + 1_000_000 + 250_000
    with pytest.raises(BackfillError, match="not a time"):
        parse_time_us("yesterday")
    with pytest.raises(BackfillError, match="not a time"):
        parse_time_us("²")  # str.isdigit() is True for it, int() refuses it


def _as_tick(t: dict[str, Any]) -> TradeTick:
    return TradeTick(
        t["instrument_name"], t["timestamp"] * 1000, 1, t["trade_id"], t["trade_seq"], t["price"], t["amount"],
        t["direction"],
    )


async def test_missing_trades_pages_and_skips_what_is_stored(
    tmp_path: Path, questdb_clean: QuestDBHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    qdb = questdb_clean
    async with Simulator(sim_config(tmp_path, trades_per_s=2500.0, rate_per_s=50.0)) as sim:
        # more than two history pages (a condition that fails when it does not hold: the
        # loop of 20 s went on with fewer trades; the deadline only bounds a failure)
        await wait_for(lambda: len(sim.history) >= 2600, 120, "2600 trades")
        hist = sim.history.all_trades()[:2500]
        start_us = hist[0]["timestamp"] * 1000
        end_us = hist[-1]["timestamp"] * 1000
        window_all = {(t["instrument_name"], t["trade_id"]) for t in sim.history.all_trades()
                      if start_us <= t["timestamp"] * 1000 <= end_us}
        stored = hist[::2]  # every other trade already in QuestDB (as if received live)
        with Sender.from_conf(qdb.ilp_conf) as sender:
            enc = IlpEncoder(int(sender.protocol_version))
            enc.add_all(_as_tick(t) for t in stored)
            for _name, (buf, _n) in enc.take().items():
                sender.flush(buf, transactional=True)
        qdb.wait_for_rows("trades", len(stored))

        bf = Backfiller(deribit.build(Settings(), ws_url=sim.ws_url), qdb.http_url)
        try:
            await bf.wait_wal()
            missing = await bf.missing(Window("*", start_us, end_us))
            assert {(t.instrument, t.trade_id) for t in missing} == window_all - {
                (t["instrument_name"], t["trade_id"]) for t in stored
            }
            assert all(t.source is TradeSource.BACKFILL for t in missing)
            by_id = {t["trade_id"]: t for t in hist}
            for t in missing[:50]:
                w = by_id.get(t.trade_id)
                if w is not None:
                    assert (t.price, t.amount, t.iv, t.trade_seq) == (w["price"], w["amount"], w["iv"], w["trade_seq"])
            # one instrument, one seq range
            inst = hist[1]["instrument_name"]
            seqs = sorted(t["trade_seq"] for t in hist if t["instrument_name"] == inst)
            w1 = Window(inst, start_us, end_us, seqs[0], seqs[-1])
            one = await bf.missing(w1)
            assert {t.instrument for t in one} <= {inst}
            assert {t.trade_id for t in one} == {
                t["trade_id"] for t in hist if t["instrument_name"] == inst and t not in stored
            }
        finally:
            await bf.aclose()

        # by hand: `tickarchive backfill --instrument * --start --end` inserts exactly the rest
        monkeypatch.setenv("TICKARCHIVE_QUESTDB__HTTP_PORT", str(qdb.http_port))
        monkeypatch.setenv("TICKARCHIVE_QUESTDB__HOST", qdb.host)
        n = await run_backfill(False, None, "*", str(start_us), str(end_us), sim.http_url)
        assert n == len(window_all) - len(stored)
        qdb.wait_for_rows("trades", len(window_all))
        src: dict[str, int] = {r[0]: r[1] for r in qdb.query("SELECT source, count() FROM trades")}
        assert src == {"ws": len(stored), "backfill": n}  # stored ones kept source=ws
        assert await run_backfill(False, None, "*", str(start_us), str(end_us), sim.http_url) == 0
