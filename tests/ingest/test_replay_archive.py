"""Replay from journal archive files (``.tjz``) derives exactly the tables of the normalize
path: every frame through the collector's reference parser one by one, the rows deduplicated
the way QuestDB does (the last row with a dedup key wins) and sorted like the archive. On
the real captures and on the simulator's market (thousands of frames over many
instruments: the bulk decoding, the bulk book-chain check and the sorted output all work
on real batches)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.real import WS_CAPTURE, WS_CAPTURE_2021_04
from tickarchive import rows
from tickarchive import tables as t
from tickarchive.archive import journal_codec
from tickarchive.bench.replay import ReplaySpec, simulated_frames
from tickarchive.ingest import replay, replay_input
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.journal.format import encode_record
from tickarchive.ingest.replay import OUTPUT_TABLES, REPLAY_CONNECTION, ParquetSink, replay_files
from tickarchive.ingest.replay_parquet import sort_keys
from tickarchive.settings import Settings
from tickarchive.venues import deribit

DERIBIT = deribit.build(Settings())


def _archive(path: Path, frames: Sequence[tuple[bytes, bytes, int]]) -> None:
    """``frames`` (connection, frame, recv_ts_us) journaled and archived as one .tjz file."""
    segment = b"".join(encode_record(i + 1, ts, conn, f) for i, (conn, f, ts) in enumerate(frames))
    data = journal_codec.encode(segment, 3)
    assert journal_codec.decode(data) == segment  # byte-exact on restore
    path.write_bytes(data)


def _normalize_path(frames: Sequence[tuple[bytes, bytes, int]]) -> dict[str, list[dict[str, Any]]]:
    """Per table, the rows of the reference parser frame by frame, the last of each dedup
    key kept, in the archive's order."""
    dec = DERIBIT.replay_decoder(REPLAY_CONNECTION)
    per_table: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {tb.name: {} for tb in OUTPUT_TABLES}
    gaps: dict[tuple[Any, ...], Any] = {}
    for _conn, frame, ts in frames:
        d = dec.decode(frame, ts)
        for ev in d.events:
            table = rows.TABLE_OF_EVENT[type(ev)]
            (row,) = rows.events_to_arrow(table, [ev]).to_pylist()
            per_table[table.name][tuple(row[k] for k in table.dedup_keys)] = row
        for g in d.gaps:
            gaps[(g.start_us, g.instrument, g.kind.value, g.connection)] = g
    for g in gaps.values():
        (row,) = rows.events_to_arrow(t.GAPS, [g]).to_pylist()
        per_table[t.GAPS.name][tuple(row[k] for k in t.GAPS.dedup_keys)] = row
    out = {}
    for tb in OUTPUT_TABLES:
        keys = sort_keys(tb)
        out[tb.name] = sorted(per_table[tb.name].values(), key=functools.partial(_sort_key, keys))
    return out


def _sort_key(keys: list[str], row: dict[str, Any]) -> list[tuple[bool, Any]]:
    return [(row[k] is None, row[k] if row[k] is not None else 0) for k in keys]  # NULLs last, as Arrow sorts


def _check(tmp_path: Path, frames: Sequence[tuple[bytes, bytes, int]], run_rows: int = 1_000_000) -> dict[str, int]:
    _archive(tmp_path / "00000000000000000001.tjz", frames)
    sink = ParquetSink(tmp_path / "out", run_rows=run_rows)
    stats = replay_files([tmp_path / "00000000000000000001.tjz"], sink, DERIBIT)
    assert stats.frames == len(frames)
    assert not stats.damaged
    want = _normalize_path(frames)
    for tb in OUTPUT_TABLES:
        got = pq.read_table(tmp_path / "out" / f"{tb.name}.parquet")
        assert got.schema == rows.arrow_schema(tb), tb.name
        assert got.to_pylist() == want[tb.name], tb.name
    return stats.rows


@pytest.mark.parametrize("capture", [WS_CAPTURE, WS_CAPTURE_2021_04], ids=lambda p: p.name)
def test_real_captures_from_the_archive_equal_the_normalize_path(tmp_path: Path, capture: Path) -> None:
    _, recs = read_capture(capture)
    got = _check(tmp_path, [(b"c0", r.frame, r.recv_ts_us) for r in recs])
    assert got["quotes"] > 80
    assert got["book_changes"] > 100


@pytest.mark.parametrize("run_rows", [1_000_000, 1500])
def test_simulated_market_from_the_archive_equals_the_normalize_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_rows: int
) -> None:
    """In batches of 1,000 frames (book chains continue across them), with the output held
    in memory or spilled as sorted runs and merged."""
    monkeypatch.setattr(replay, "read_batches", functools.partial(replay_input.read_batches, batch_frames=1000))
    frames = list(simulated_frames(ReplaySpec(frames=6000, instruments=60, connections=2)))
    got = _check(tmp_path, frames, run_rows)
    assert got["quotes"] > 2000
    assert got["book_changes"] > 2000


def test_cli_bench_replay_makes_its_input_once_and_writes_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tickarchive.cli import app

    args = ["bench", "replay", "--frames", "2000", "--instruments", "20", "--runs", "1", "--work-dir", str(tmp_path)]
    first = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    assert "making 2,000 simulator frames" in first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "making" not in again.output  # the input is kept
    figures = json.loads((tmp_path / "a.json").read_text())
    assert figures["frames"] == 2000
    assert figures["rows"]["quotes"] + figures["rows"]["book_changes"] > 1500
    assert figures["replay_frames_per_s"] > 0
    # start-up measured apart (a one-frame input; 2,000 frames cost about as much again)
    assert figures["startup_cpu_s"] > 0
    assert "replay_frames_per_s_beyond_startup" in figures
