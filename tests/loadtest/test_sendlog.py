"""The send log spools to Parquet parts and exports files a harness can anti-join."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from tickarchive.loadtest.sim import SendLog, SimConfig
from tickarchive.loadtest.sim import sendlog as sl

from .conftest import client, running


def test_spooling_in_parts_and_export(tmp_path: Path) -> None:
    log = SendLog(tmp_path / "spool", batch_rows=100)
    for i in range(250):
        log.record("c1", sl.SENT, 1_000 + i, [(sl.QUOTES, "ticker.X.100ms", "X", i * 1000)])
    log.record(
        "c2",
        sl.SILENCED,
        5_000,
        [(sl.TRADES, "trades.option.ETH.100ms", (("X", "ETH-1", 1, 10), ("Y", "ETH-2", 7, 11)))],
    )
    log.record(
        "c1",
        sl.SENT,
        6_000,
        [
            (sl.BOOK, "book.X.100ms", "X", 500, None, 6, True, 12),
            (sl.BOOK, "book.X.100ms", "X", 510, 500, 1, False, 13),
        ],
    )
    assert len(log.part_files(sl.QUOTES)) == 2  # 100 + 100 spooled, 50 still buffered
    assert log.count(sl.QUOTES) == 250
    assert log.count(sl.TRADES, sl.SILENCED) == 2
    assert log.keys(sl.BOOK) == {("X", 500, None, 6, 12), ("X", 510, 500, 1, 13)}
    assert log.keys(sl.TRADES, status=sl.SILENCED, connection="c2") == {("X", "ETH-1", 1, 10), ("Y", "ETH-2", 7, 11)}
    assert log.keys(sl.TRADES) == set()
    paths = log.export(tmp_path / "out")
    quotes = pq.read_table(paths["quotes"])
    assert quotes.num_rows == 250
    assert quotes.column_names == ["connection", "status", "wall_us", "channel", "instrument", "ts_us"]
    assert sorted(quotes.column("ts_us").to_pylist()) == [i * 1000 for i in range(250)]
    trades = pq.read_table(paths["trades"]).to_pylist()
    assert [(t["instrument"], t["trade_seq"], t["status"]) for t in trades] == [
        ("X", 1, "silenced"),
        ("Y", 7, "silenced"),
    ]
    assert Path(paths["summary"]).is_file()
    assert Path(paths["faults_json"]).read_text() == "[]"
    summary = log.summary(per_instrument=True)
    assert summary["tables"]["quotes"] == {"sent": 250}
    assert summary["by_connection"]["c2"] == {"trades": {"silenced": 2}}
    assert summary["per_instrument"]["quotes"] == {"X": 250}
    assert summary["trade_seq"] == {}  # nothing was sent


async def test_control_endpoints_flush_and_export(cfg: SimConfig, tmp_path: Path) -> None:
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "ETH"}))["result"]]
        await c.call("public/subscribe", {"channels": [f"ticker.{n}.100ms" for n in names]})
        # a ticker (a condition, not 0.5 s: the summary below has a "sent" count only once
        # a quote was sent; the deadline only bounds a failure)
        await c.collect(60.0, until=lambda _notes: bool(c.channel_notes("ticker.")))
        await c.call("public/unsubscribe_all")
        sim.inject("silence", conn="c1", seconds=0.1)
        async with httpx.AsyncClient() as http:
            summary = (await http.get(f"{sim.control_url}/sendlog/summary", params={"per_instrument": "true"})).json()
            exported = (
                await http.get(f"{sim.control_url}/sendlog/export", params={"dir": str(tmp_path / "export")})
            ).json()
            status = (await http.get(f"{sim.control_url}/status")).json()
            bad = await http.get(f"{sim.control_url}/sendlog/export")
    got = len(c.channel_notes("ticker."))
    assert summary["tables"]["quotes"] == {"sent": got}
    assert sum(summary["per_instrument"]["quotes"].values()) == got
    assert pq.read_table(exported["quotes"]).num_rows == got
    assert pq.read_table(exported["faults"]).column("kind").to_pylist() == ["silence"]
    connections = _read_json(exported["connections"])
    assert list(connections) == ["c1"]
    assert connections["c1"]["closed_us"] is None  # still open at export time
    assert status["mode"] == "market"
    assert status["instruments"] == len(names)
    assert bad.status_code == 400
    assert "dir=PATH" in bad.json()["error"]


def _read_json(path: str) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(Path(path).read_text())
    return data


def test_a_temporary_spool_directory_goes_away_with_the_log() -> None:
    import gc

    log = SendLog()
    spool = log.directory
    assert spool.is_dir()
    del log
    gc.collect()
    assert not spool.exists()


def test_a_given_spool_directory_is_kept(tmp_path: Path) -> None:
    log = SendLog(tmp_path / "spool")
    log.cleanup()
    del log
    assert (tmp_path / "spool").is_dir()
