"""Replay of recorded captures (pure parsing; the server paces and publishes).

Input: one raw frame per line, optionally prefixed by ``<unix seconds>: `` (the form of
``tests/fixtures/deribit/real/*.ws.*`` and of the journal export). Skipped: blank lines,
connect headers (``wss://... <-> ts``), our own sent requests (``... <- ts: {...}``),
REST records (``https://... -> ts: ...``), ``configuration:`` lines, replies to requests
(frames with an ``id``) and heartbeats. Every ``subscription`` notification is replayed
byte for byte, except that with ``interval`` set the ``.raw`` suffix of its channel is
rewritten (captures from 2021 used ``raw`` channels, which unauthenticated clients can no
longer subscribe to). A frame that is not valid JSON is replayed verbatim on every
connection (a real capture may hold one; the collector must survive it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tickarchive.loadtest.errors import ReplayFormatError
from tickarchive.loadtest.sim.encode import BOOK, INDEX, QUOTES, STATES, TRADES, Record

_PREFIX = re.compile(rb"^(\d+(?:\.\d+)?): ")
_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_OPTION = re.compile(r"^([A-Z]+)-(\d{1,2})([A-Z]{3})(\d{2})-(\d+(?:d\d+)?)-([CP])$")


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    recv_s: float | None
    frame: bytes
    channel: str | None
    """None for a frame that is not valid JSON (sent to every connection)."""
    records: tuple[Record, ...]


def frame_records(channel: str, data: Any) -> tuple[Record, ...]:
    """Send-log records of one notification, from its parsed ``data``."""
    head = channel.split(".", 1)[0]
    try:
        if head == "ticker":
            return ((QUOTES, channel, data["instrument_name"], int(data["timestamp"]) * 1000),)
        if head == "book":
            n_rows = len(data.get("bids", ())) + len(data.get("asks", ()))
            return (
                (
                    BOOK,
                    channel,
                    data["instrument_name"],
                    int(data["change_id"]),
                    data.get("prev_change_id"),
                    n_rows,
                    data.get("type") == "snapshot",
                    int(data["timestamp"]) * 1000,
                ),
            )
        if head == "trades":
            keys = tuple(
                (t["instrument_name"], str(t["trade_id"]), int(t["trade_seq"]), int(t["timestamp"]) * 1000)
                for t in data
            )
            return ((TRADES, channel, keys),)
        if head == "deribit_price_index":
            return ((INDEX, channel, data["index_name"], int(data["timestamp"]) * 1000),)
        if channel.startswith("instrument.state."):
            return ((STATES, channel, data["instrument_name"], data["state"], int(data["timestamp"]) * 1000),)
    except (KeyError, TypeError, ValueError):
        return ()
    return ()


def parse_line(line: bytes, interval: str | None) -> CapturedFrame | None:
    """One capture line -> a frame to replay, or None if the line is not one."""
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return None
    recv_s: float | None = None
    m = _PREFIX.match(line)
    if m:
        recv_s = float(m.group(1))
        line = line[m.end() :]
    elif not line.lstrip().startswith((b"{", b"[")):
        return None  # connect header, sent request, REST record, configuration line
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        return CapturedFrame(recv_s, line, None, ())
    if not isinstance(msg, dict) or msg.get("method") != "subscription":
        return None
    params = msg.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
        return None
    channel: str = params["channel"]
    if interval is not None and channel.endswith(".raw"):
        renamed = channel[: -len("raw")] + interval
        old = orjson.dumps(channel)
        if line.count(old) == 1:
            line = line.replace(old, orjson.dumps(renamed))
            channel = renamed
    return CapturedFrame(recv_s, line, channel, frame_records(channel, params.get("data")))


def load_capture(path: Path, interval: str | None) -> list[CapturedFrame]:
    try:
        with path.open("rb") as fh:
            frames = [f for f in (parse_line(line, interval) for line in fh) if f is not None]
    except OSError as exc:
        raise ReplayFormatError(f"cannot read capture {path}: {exc}") from exc
    if not frames:
        raise ReplayFormatError(f"capture {path} holds no subscription frames")
    return frames


def replay_offsets(frames: list[CapturedFrame], speed: float) -> list[float]:
    """Seconds after the replay start at which each frame is due: the original receive
    times divided by ``speed``; all 0 when ``speed`` is 0 or the capture has no times."""
    first = next((f.recv_s for f in frames if f.recv_s is not None), None)
    if speed <= 0 or first is None:
        return [0.0] * len(frames)
    out: list[float] = []
    last = 0.0
    for f in frames:
        if f.recv_s is not None:
            last = max(last, (f.recv_s - first) / speed)
        out.append(last)
    return out


def instrument_description(name: str) -> dict[str, Any] | None:
    """A ``get_instruments`` entry reconstructed from an option name (replay mode)."""
    m = _OPTION.match(name)
    if not m:
        return None
    base, day, mon, yy, strike, cp = m.groups()
    if mon not in _MONTHS:
        return None
    expiry = dt.datetime(2000 + int(yy), _MONTHS[mon], int(day), 8, tzinfo=dt.UTC)
    return {
        "tick_size": 0.0005,
        "taker_commission": 0.0003,
        "strike": float(strike.replace("d", ".")),
        "settlement_period": "month",
        "quote_currency": base,
        "option_type": "call" if cp == "C" else "put",
        "min_trade_amount": 1 if base == "ETH" else 0.1,
        "maker_commission": 0.0003,
        "kind": "option",
        "is_active": True,
        "instrument_name": name,
        "expiration_timestamp": int(expiry.timestamp() * 1000),
        "creation_timestamp": int(expiry.timestamp() * 1000) - 90 * 86_400_000,
        "contract_size": 1.0,
        "block_trade_commission": 0.00015,
        "base_currency": base,
    }


class ReplayCatalog:
    """The instruments and channels a capture holds."""

    def __init__(self, frames: list[CapturedFrame]) -> None:
        self.channels = frozenset(f.channel for f in frames if f.channel is not None)
        names: set[str] = set()
        for ch in self.channels:
            parts = ch.split(".")
            if parts[0] in ("ticker", "book", "trades") and len(parts) == 3:
                names.add(parts[1])
        self._descriptions = {n: d for n in sorted(names) if (d := instrument_description(n)) is not None}
        self._index = 0.0
        for f in frames:
            if f.channel and f.channel.startswith("ticker."):
                try:
                    self._index = float(orjson.loads(f.frame)["params"]["data"]["index_price"])
                    break
                except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
                    continue
        self.is_locked = False

    def instruments(self, currency: str, kind: str | None, expired: bool) -> list[dict[str, Any]]:
        return [
            d
            for d in self._descriptions.values()
            if currency in ("any", d["base_currency"]) and kind in (None, "option")
        ]

    def instrument_exists(self, name: str) -> bool:
        return name in self._descriptions

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({d["base_currency"] for d in self._descriptions.values()})) or ("ETH",)

    def index_names(self) -> tuple[str, ...]:
        return tuple(f"{c.lower()}_usd" for c in self.currencies())

    def combos(self, currency: str) -> list[dict[str, Any]]:
        return []

    def ticker(self, name: str) -> dict[str, Any] | None:
        return None

    def index_price(self, index_name: str) -> float | None:
        return self._index if index_name in self.index_names() else None

    def extra_channels(self) -> frozenset[str]:
        return self.channels

    def locked(self) -> bool:
        return self.is_locked
