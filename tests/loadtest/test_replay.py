"""Replay of the real 2021 capture: every notification arrives byte for byte, counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.real import REAL
from tickarchive.loadtest.errors import ReplayFormatError
from tickarchive.loadtest.sim import SimConfig
from tickarchive.loadtest.sim import sendlog as sl
from tickarchive.loadtest.sim.replay import load_capture, parse_line, replay_offsets

from .conftest import client, running

CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0"


def test_capture_parsing_skips_headers_requests_and_replies() -> None:
    frames = load_capture(CAPTURE, "100ms")
    assert len(frames) == 89 + 46  # tickers + books; header, request and reply skipped
    assert frames[0].recv_s == 1626993723.804855
    assert all(f.channel is not None and f.channel.endswith(".100ms") for f in frames)
    assert frames[0].frame.startswith(
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH-30JUL21-2800-C.100ms"'
    )
    book = next(f for f in frames if f.channel and f.channel.startswith("book."))
    assert book.records == (
        (
            "book_changes",
            "book.ETH-30JUL21-2800-C.100ms",
            "ETH-30JUL21-2800-C",
            13169025645,
            None,
            16,
            True,
            1626993723632000,
        ),
    )
    kept = load_capture(CAPTURE, None)
    assert kept[0].channel == "ticker.ETH-30JUL21-2800-C.raw"
    assert parse_line(b"1626993723.9: not json", None) is not None
    assert parse_line(b"configuration: {}", None) is None
    assert parse_line(b'{"jsonrpc":"2.0","id":3,"result":[]}', None) is None  # a reply to a request


def test_empty_capture_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ws"
    empty.write_text("wss://www.deribit.com/ws/api/v2 <-> 1626993723.4\n")
    with pytest.raises(ReplayFormatError, match="holds no subscription frames"):
        load_capture(empty, "100ms")
    with pytest.raises(ReplayFormatError, match="cannot read capture"):
        load_capture(tmp_path / "missing.ws", "100ms")


async def test_replay_serves_the_capture_to_subscribers(tmp_path: Path) -> None:
    cfg = SimConfig(replay_file=CAPTURE, replay_speed=0, sendlog_dir=tmp_path / "log")
    expected = load_capture(CAPTURE, "100ms")
    channels = sorted({f.channel for f in expected if f.channel})
    async with running(cfg) as sim, client(sim) as c:
        names = [i["instrument_name"] for i in (await c.call("public/get_instruments", {"currency": "any"}))["result"]]
        assert "ETH-30JUL21-2800-C" in names
        assert "BTC-31DEC21-34000-P" in names
        raw = await c.call("public/subscribe", {"channels": ["ticker.ETH-30JUL21-2800-C.raw"]})
        assert raw["error"]["code"] == 13778
        sub = await c.call("public/subscribe", {"channels": channels})
        assert sub["result"] == channels
        async with asyncio.timeout(60):  # (the deadlines only bound a failure)
            await sim.replay_done.wait()
        await c.collect(60.0, until=lambda notes: len(notes) >= len(expected))
    got = [t.encode() for t in c.raw if '"method":"subscription"' in t]
    assert got == [f.frame for f in expected]
    assert sim.send_log.count("quotes") == 89
    assert sim.send_log.count("book_changes") == 46
    assert sim.send_log.keys("quotes") == {r[2:] for f in expected for r in f.records if r[0] == sl.QUOTES}


def test_replay_schedule_keeps_original_or_scaled_timing() -> None:
    frames = load_capture(CAPTURE, "100ms")
    original = replay_offsets(frames, 1.0)
    assert original[0] == 0.0
    assert original[-1] == pytest.approx(frames[-1].recv_s - frames[0].recv_s)  # type: ignore[operator]
    assert original[-1] > 30
    assert replay_offsets(frames, 10.0) == pytest.approx([o / 10 for o in original])
    assert replay_offsets(frames, 0) == [0.0] * len(frames)
