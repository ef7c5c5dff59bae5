"""Replay rebuilds the tables from the real captures, with exact values."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.real import REST_CAPTURE, WS_CAPTURE
from tickarchive import rows
from tickarchive import tables as t
from tickarchive.cli import app
from tickarchive.domain import BookAction, BookChange, QuoteTick, Side
from tickarchive.ingest.errors import CaptureError
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.replay import ParquetSink, events_to_arrow, replay_files
from tickarchive.settings import Settings
from tickarchive.venues import deribit

DERIBIT = deribit.build(Settings())

runner = CliRunner()


def test_replay_real_captures_to_parquet(tmp_path: Path) -> None:
    stats = replay_files([WS_CAPTURE, REST_CAPTURE], ParquetSink(tmp_path / "out"), DERIBIT, batch_rows=50)
    assert stats.frames == 140
    assert stats.malformed == {}
    assert stats.rows == {
        "quotes": 89,
        "trades": 0,
        "book_changes": 152,  # 149 levels + 3 'empty' markers of empty snapshot sides
        "index_ticks": 0,
        "instruments": 1017,
        "combo_legs": 0,
        "gaps": 0,
    }
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{tb.name}.parquet" for tb in (*t.MARKET_TABLES, t.GAPS))
    quotes = pq.read_table(out / "quotes.parquet")
    assert quotes.schema == rows.arrow_schema(t.QUOTES)
    # sorted like the archive: (instrument, ts)
    keys = [(r["instrument"], r["ts"]) for r in quotes.select(["instrument", "ts"]).to_pylist()]
    assert keys == sorted(keys)
    first = next(r for r in quotes.to_pylist() if r["instrument"] == "ETH-30JUL21-2800-C")
    assert (first["instrument"], first["bid_iv"], first["ask_iv"], first["mark_iv"]) == (
        "ETH-30JUL21-2800-C",
        115.62,
        125.63,
        120.74,
    )
    assert (first["delta"], first["gamma"], first["vega"], first["theta"], first["rho"]) == (
        0.03127,
        0.0002,
        0.20072,
        -1.64029,
        0.01188,
    )
    assert int(first["ts"].timestamp() * 1_000_000) == 1626993723632000
    book = pq.read_table(out / "book_changes.parquet")
    chain = [
        (r["change_id"], r["prev_change_id"])
        for r in book.to_pylist()
        if r["instrument"] == "BTC-24SEP21-8000-P" and not r["is_snapshot"]
    ]
    assert chain[:3] == [(33195894355, 33195894164), (33195894358, 33195894355), (33195894526, 33195894358)]
    inst = pq.read_table(out / "instruments.parquet").to_pylist()
    eth_opts = [r for r in inst if r["base_currency"] == "ETH" and r["kind"] == "option"]
    assert len(eth_opts) == 418
    assert pq.read_table(out / "trades.parquet").num_rows == 0
    assert pq.read_table(out / "trades.parquet").schema == rows.arrow_schema(t.TRADES)


def test_fast_arrow_conversion_equals_rows_events_to_arrow() -> None:
    quotes = [
        QuoteTick("ETH-1", 1_000, 2_000, bid_price=0.5, underlying_index="ETH-X", state="open"),
        QuoteTick("ETH-2", 3_000, 4_000, ask_price=0.7, delta=-0.2),
    ]
    assert events_to_arrow(t.QUOTES, quotes).equals(rows.events_to_arrow(t.QUOTES, quotes))
    book = [
        BookChange("ETH-1", 1, 2, 5, None, True, Side.BID, BookAction.SNAPSHOT, 0.1, 2.0),
        BookChange("ETH-1", 3, 4, 9, 5, False, Side.ASK, BookAction.DELETE, 0.2, 0.0),
    ]
    assert events_to_arrow(t.BOOK_CHANGES, book).equals(rows.events_to_arrow(t.BOOK_CHANGES, book))


def test_replay_rederives_sequence_gaps_and_counts_malformed(tmp_path: Path) -> None:
    f = tmp_path / "frames.txt"
    lines = [
        b'1700000000.000001: {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.ETH-A.100ms",'
        b'"data":{"type":"snapshot","timestamp":1700000000000,"instrument_name":"ETH-A","change_id":10,'
        b'"bids":[["new",0.1,1.0]],"asks":[]}}}',
        b'1700000000.100000: {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.ETH-A.100ms",'
        b'"data":{"type":"change","timestamp":1700000000100,"instrument_name":"ETH-A","change_id":30,'
        b'"prev_change_id":20,"bids":[["delete",0.1,0.0]],"asks":[]}}}',
        b"1700000000.2: this is not json",
        b"garbage line without a time",
        b'1700000000.3: {"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.option.ETH.100ms",'
        b'"data":[{"trade_id":"1","trade_seq":5,"instrument_name":"ETH-A","timestamp":1700000000300,"price":0.1,'
        b'"amount":1.0,"direction":"buy"},{"trade_id":"2","trade_seq":9,"instrument_name":"ETH-A",'
        b'"timestamp":1700000000400,"price":0.1,"amount":1.0,"direction":"buy"}]}}',
    ]
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = replay_files([f], ParquetSink(tmp_path / "o"), DERIBIT)
    assert stats.malformed == {"invalid_json": 1}
    assert stats.unreadable_lines == 1
    assert stats.rows["gaps"] == 2
    gaps = pq.read_table(tmp_path / "o" / "gaps.parquet").to_pylist()
    assert [(g["kind"], g["instrument"], g["connection"]) for g in gaps] == [
        ("book_seq", "ETH-A", "replay"),
        ("trade_seq", "ETH-A", "replay"),
    ]
    assert gaps[1]["cause"] == "trade_seq 5 -> 9 (missing 6..8)"


def test_unreadable_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read"):
        replay_files([tmp_path / "missing.txt"], ParquetSink(tmp_path / "o"), DERIBIT)
    assert not any((tmp_path / "o").glob("*.parquet"))  # nothing half-written
    result = runner.invoke(app, ["replay", str(tmp_path / "missing.txt"), "--to", str(tmp_path / "o")])
    assert result.exit_code != 0


def test_cli_replay_journal_roundtrip(tmp_path: Path, ws_records) -> None:
    jdir = tmp_path / "journal"
    with Journal.open(jdir, segment_bytes=20_000) as j:
        for r in ws_records:
            j.append(r.frame, r.recv_ts_us, "c0")
        j.commit(50)
    res = runner.invoke(app, ["journal", "ls", "--dir", str(jdir)])
    assert res.exit_code == 0, res.output
    assert "136 records" in res.output
    res = runner.invoke(app, ["journal", "verify", "--dir", str(jdir)])
    assert res.exit_code == 0, res.output
    assert "136 records" in res.output
    export = tmp_path / "export.txt"
    res = runner.invoke(app, ["journal", "export", "--dir", str(jdir), "--out", str(export)])
    assert res.exit_code == 0, res.output
    assert export.read_bytes().count(b"\n") == 136
    res = runner.invoke(
        app,
        [
            "journal",
            "export",
            "--dir",
            str(jdir),
            "--out",
            str(tmp_path / "w.txt"),
            "--start",
            "1626993723.804855",
            "--end",
            "2021-07-22T22:42:04",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "w.txt").read_bytes().count(b"\n") == 20
    res = runner.invoke(app, ["replay", str(export), "--to", str(tmp_path / "tables")])
    assert res.exit_code == 0, res.output
    assert "quotes: 89 rows" in res.output
    assert pq.read_table(tmp_path / "tables" / "book_changes.parquet").num_rows == 152


def test_cli_bench_normalize_generates_and_writes_json(tmp_path: Path) -> None:
    inp = tmp_path / "synth.txt"
    out = tmp_path / "bench.json"
    res = runner.invoke(
        app, ["bench", "normalize", "--input", str(inp), "--generate", "2000", "--runs", "1", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert set(got) == {"frames", "ticks", "frames_per_s", "ticks_per_s"}
    assert got["frames"] == 2000
    assert got["ticks"] > 2000
    # the synthetic stream is well-formed: nothing malformed, chains unbroken
    stats = replay_files([inp], ParquetSink(tmp_path / "o"), DERIBIT)
    assert stats.malformed == {}
    assert stats.rows["gaps"] == 0
    assert stats.rows["quotes"] > 1000


def test_export_to_stdout(tmp_path: Path, ws_records) -> None:
    with Journal.open(tmp_path) as j:
        j.append(ws_records[1].frame, ws_records[1].recv_ts_us, "c0")
    res = runner.invoke(app, ["journal", "export", "--dir", str(tmp_path), "--out", "-"])
    assert res.exit_code == 0
    assert res.stdout.startswith("1626993723.804855: {")
    assert io.BytesIO(res.stdout_bytes).read().count(b"\n") == 1


def test_cli_bench_journal(tmp_path: Path) -> None:
    res = runner.invoke(app, ["bench", "journal", "--frames", "2000", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "2000 records" in res.output
    assert "receive -> fsync window <=" in res.output
    assert list(tmp_path.iterdir()) == []  # the scratch journal is removed


def _table_rows(directory: Path, name: str) -> list[tuple[object, ...]]:
    return sorted(
        (tuple(r.values()) for r in pq.read_table(directory / f"{name}.parquet").to_pylist()), key=repr
    )


def test_replay_output_has_each_dedup_key_once_and_damage_exits_3(tmp_path: Path) -> None:
    """A real capture with every book and ticker frame received twice (a resubscribe
    overlap; Deribit's duplicated notifications) and one damaged line: the Parquet output
    holds what QuestDB's dedup would (each key once: the same rows as the clean capture),
    says how many duplicates it replaced, and the damaged line makes the exit status 3."""
    lines = WS_CAPTURE.read_bytes().splitlines()
    doubled: list[bytes] = []
    repeated = 0
    for line in lines:
        doubled.append(line)
        if b'"channel":"book.' in line or b'"channel":"ticker.' in line:
            doubled.append(line)
            repeated += 1
    assert repeated > 100
    damaged = tmp_path / "damaged.txt"
    damaged.write_bytes(b"\n".join([*doubled, b"1626993730.0 truncated line without its separator"]) + b"\n")
    clean = tmp_path / "clean.txt"
    clean.write_bytes(b"\n".join(lines) + b"\n")

    res = runner.invoke(app, ["replay", str(clean), "--to", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["replay", str(damaged), "--to", str(tmp_path / "b")])
    assert res.exit_code == 3, res.output
    assert "damaged input skipped" in res.output
    assert "quotes: 89 rows (89 duplicate key(s) replaced by a later row)" in res.output
    for tbl in (*t.MARKET_TABLES, t.GAPS):  # the written output is still complete and exact
        assert _table_rows(tmp_path / "b", tbl.name) == _table_rows(tmp_path / "a", tbl.name), tbl.name
    book = pq.read_table(tmp_path / "b" / "book_changes.parquet").to_pylist()
    keys = [tuple(r[k] for k in t.BOOK_CHANGES.dedup_keys) for r in book]
    assert len(keys) == len(set(keys)) == 152


def _ticker(ts_ms: int, inst: str, bid: float) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": f"ticker.{inst}.100ms", "data": {
            "timestamp": ts_ms, "instrument_name": inst, "best_bid_price": bid, "best_bid_amount": 1.0,
            "best_ask_price": bid + 0.001, "best_ask_amount": 2.0, "state": "open", "mark_price": bid}}},
        separators=(",", ":"),
    ).encode()


@pytest.mark.parametrize("run_rows", [1_000_000, 3], ids=["in-memory", "spilled-runs"])
def test_parquet_output_is_deduplicated_last_write_wins(tmp_path: Path, run_rows: int) -> None:
    """Rows with equal dedup keys collapse into the one read last, as QuestDB's DEDUP
    UPSERT KEYS keep the last write: within a file, across files, across spilled runs."""
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_bytes(b"".join(b"1700000000.%06d: %s\n" % (i, f) for i, f in enumerate([
        _ticker(1_700_000_000_000, "ETH-B", 0.10),
        _ticker(1_700_000_000_000, "ETH-A", 0.20),
        _ticker(1_700_000_000_100, "ETH-A", 0.21),
        _ticker(1_700_000_000_000, "ETH-B", 0.11),  # same key as the first: replaces it
    ])))
    b.write_bytes(b"1700000001.000000: %s\n" % _ticker(1_700_000_000_100, "ETH-A", 0.30))  # replaces 0.21
    stats = replay_files([a, b], ParquetSink(tmp_path / "o", run_rows=run_rows), DERIBIT)
    assert stats.rows["quotes"] == 3
    assert stats.duplicates["quotes"] == 2
    got = [(r["instrument"], int(r["ts"].timestamp() * 1000), r["bid_price"])
           for r in pq.read_table(tmp_path / "o" / "quotes.parquet").to_pylist()]
    assert got == [("ETH-A", 1_700_000_000_000, 0.20), ("ETH-A", 1_700_000_000_100, 0.30),
                   ("ETH-B", 1_700_000_000_000, 0.11)]  # fmt: skip
    assert not list((tmp_path / "o").glob(".replay-runs-*"))  # spill files removed


def test_replaying_a_capture_twice_gives_the_same_tables(tmp_path: Path) -> None:
    once = replay_files([WS_CAPTURE], ParquetSink(tmp_path / "once"), DERIBIT)
    twice = replay_files([WS_CAPTURE, WS_CAPTURE], ParquetSink(tmp_path / "twice", run_rows=50), DERIBIT)
    assert twice.rows == once.rows
    assert twice.duplicates["quotes"] == 89
    for name in ("quotes", "book_changes"):
        assert pq.read_table(tmp_path / "twice" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "once" / f"{name}.parquet")
        )


def test_cli_replay_exits_non_zero_on_damaged_input_unless_accepted(tmp_path: Path) -> None:
    f = tmp_path / "frames.txt"
    good = b"1700000000.000001: " + _ticker(1_700_000_000_000, "ETH-A", 0.1)
    f.write_bytes(good + b"\nthis line is damaged\n" + good.replace(b"0.1,", b"0.2,") + b"\n")
    res = runner.invoke(app, ["replay", str(f), "--to", str(tmp_path / "o")])
    assert res.exit_code == 3, res.output
    assert "damaged input skipped" in res.output
    assert "1 unreadable line(s) (line 2)" in res.output
    assert "--accept-damage" in res.output
    assert pq.read_table(tmp_path / "o" / "quotes.parquet").num_rows == 1  # the rest is written
    res = runner.invoke(app, ["replay", str(f), "--to", str(tmp_path / "o2"), "--accept-damage"])
    assert res.exit_code == 0, res.output
    assert "damaged input accepted" in res.output
    clean = tmp_path / "clean.txt"
    clean.write_bytes(good + b"\n\n")  # an empty line is not damage
    res = runner.invoke(app, ["replay", str(clean), "--to", str(tmp_path / "o3")])
    assert res.exit_code == 0, res.output


def test_cli_replay_reads_journal_segments_and_reports_crc_damage(tmp_path: Path, ws_records) -> None:
    jdir = tmp_path / "journal"
    with Journal.open(jdir) as j:
        for r in ws_records:
            j.append(r.frame, r.recv_ts_us, "c0")
        j.sync()
    (seg,) = sorted(jdir.glob("*.tjl"))
    data = bytearray(seg.read_bytes())
    data[40] ^= 0x01  # inside the first record's frame
    seg.write_bytes(bytes(data))
    res = runner.invoke(app, ["replay", str(seg), "--to", str(tmp_path / "o")])
    assert res.exit_code == 3, res.output
    assert "1 journal record(s) failing their CRC" in res.output
    assert "replayed 135 frames" in res.output


def test_replay_process_never_imports_pandas_or_httpx(tmp_path: Path) -> None:
    """``tickarchive replay`` answers pyarrow's pandas probe without importing pandas and
    never loads the HTTP client (start-up time: docs/archive.md, "Replay speed"); an
    explicit pandas conversion in the same process still works."""
    code = (
        "import sys\n"
        "from tickarchive.cli import main\n"
        "try:\n"
        f"    main(['replay', {str(WS_CAPTURE)!r}, '--to', {str(tmp_path / 'out')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('pandas', 'httpx') if m in sys.modules))\n"
        "import pyarrow as pa\n"
        "print(type(pa.table({'a': [1]}).to_pandas()).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines()[-2:] == ["[]", "DataFrame"], out.stdout + out.stderr
    assert (tmp_path / "out" / "quotes.parquet").is_file()
