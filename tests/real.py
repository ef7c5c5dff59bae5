"""The real captured Deribit messages under tests/fixtures/deribit/real/ (provenance in
its SOURCES.md), for every test that checks a parser, the simulator or a store against
real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REAL = Path(__file__).resolve().parent / "fixtures" / "deribit" / "real"
WS_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0"
WS_CAPTURE_2021_04 = REAL / "cryptofeed_2021-04-17_DERIBIT.ws.30.0"
"""A second real WebSocket capture (2021-04-17, 10 options, ``.raw`` channels)."""
REST_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.0"
WS_CAPTURE_APRIL = REAL / "cryptofeed_2021-04-17_DERIBIT.ws.30.0"
REST_CAPTURE_APRIL = REAL / "cryptofeed_2021-04-17_DERIBIT.0"
WS_CAPTURES = (WS_CAPTURE_APRIL, WS_CAPTURE)
"""The two real `.raw` WebSocket captures (cryptofeed, 2021-04-17 and 2021-07-22)."""
NAUTILUS = REAL / "nautilus"
TARDIS = REAL / "tardis" / "tardis-node_mappers.test.ts_deribit.jsonl"
CRYPTO_MSG_PARSER = REAL / "crypto-msg-parser" / "crypto-msg-parser_tests_deribit.rs.jsonl"
FUTURES_2025 = REAL / "crypto-market-raw-data" / "deribit.future.2025-05-02.json"


def nautilus_frame(name: str) -> bytes:
    """A nautilus fixture re-serialised compactly (they are pretty-printed)."""
    return json.dumps(json.loads((NAUTILUS / name).read_text()), separators=(",", ":")).encode()


def capture_lines(path: Path) -> list[tuple[float, bytes]]:
    """``(receive time, frame)`` of every received frame of a cryptofeed ``.ws`` capture
    (the connect header and our sent requests left out)."""
    out: list[tuple[float, bytes]] = []
    for line in path.read_bytes().splitlines():
        if b" <-" in line[:80] or b" <->" in line[:80] or b": " not in line:
            continue
        ts, frame = line.split(b": ", 1)
        out.append((float(ts), frame))
    return out


def notifications(path: Path, prefix: str = "") -> list[dict[str, Any]]:
    """The ``params`` (channel, data) of every subscription notification of a capture whose
    channel starts with ``prefix``."""
    out = []
    for _ts, frame in capture_lines(path):
        msg = json.loads(frame)
        if msg.get("method") == "subscription" and msg["params"]["channel"].startswith(prefix):
            out.append(msg["params"])
    return out


def jsonl_frames(path: Path) -> list[bytes]:
    """The lines of a ``.jsonl`` fixture (one JSON message each), as bytes."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def jsonl_frame(path: Path, channel: str) -> bytes:
    """The first message of a ``.jsonl`` fixture on ``channel``."""
    for line in jsonl_frames(path):
        if f'"channel":"{channel}"'.encode() in line:
            return line
    raise KeyError(f"no {channel} message in {path.name}")
