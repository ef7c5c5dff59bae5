"""Fault specifications and the record of injected faults (pure).

A fault is requested three ways, all ending here:

* CLI: ``--fault 'silence:conn=c1,seconds=5@10'`` (kind, parameters, start offset in
  seconds after the simulator started); ``parse_fault_spec`` reads that form;
* HTTP: ``GET /control/fault/<kind>?conn=c1&seconds=5``;
* Python: ``sim.inject(FaultSpec("silence", {"conn": "c1", "seconds": "5"}))``.

Kinds and parameters (``conn`` = a connection id such as ``c1``, or ``all``; default all):

==================== ===========================================================
``drop``             abort the TCP connection(s) without a close frame
``silence``          keep the socket open but send nothing for ``seconds``
                     (no notifications, heartbeats or replies): a stale socket
``skip_book``        withhold the next ``count`` book changes of ``instrument``
                     (default: a random listed one) — breaks the change_id chain
``skip_trades``      withhold the next ``count`` trades of ``instrument`` on the wire
                     (they stay in the history endpoint) — a trade_seq gap
``malformed``        send ``count`` frames that are not valid JSON
``unknown_channel``  send ``count`` notifications on a channel nobody subscribed
``extra_fields``     add unknown fields to the next ``count`` notifications
``heartbeat_delay``  send test_requests ``seconds`` late for ``duration`` seconds
``heartbeat_withhold`` send no test_request for ``seconds``
``reject``           refuse subscriptions for ``seconds`` (``mode=error`` replies
                     with an error, ``mode=omit`` leaves the channels out of the result)
``too_slow``         close the connection(s) with reason ``connection_too_slow``
``maintenance``      ``platform_state`` locked and no market data for ``seconds``
``poison``           send ``count`` ticker notifications (default 4) whose values no
                     store accepts, one shape after the other (``POISON_SHAPES``):
                     a negative timestamp, a timestamp past year 9999, NaN-like
                     strings in number fields, a ``bytes``-long (default 10 MiB)
                     string field; each is logged ``sent`` with its own key
==================== ===========================================================

Every injected fault becomes a ``FaultRecord`` in the send log, with its window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import orjson

from tickarchive.loadtest.errors import FaultSpecError

FAULT_KINDS = (
    "drop",
    "silence",
    "skip_book",
    "skip_trades",
    "malformed",
    "unknown_channel",
    "extra_fields",
    "heartbeat_delay",
    "heartbeat_withhold",
    "reject",
    "too_slow",
    "maintenance",
    "poison",
)

_ALLOWED_PARAMS: Mapping[str, frozenset[str]] = {
    "drop": frozenset({"conn"}),
    "silence": frozenset({"conn", "seconds"}),
    "skip_book": frozenset({"conn", "instrument", "count"}),
    "skip_trades": frozenset({"conn", "instrument", "count"}),
    "malformed": frozenset({"conn", "count"}),
    "unknown_channel": frozenset({"conn", "count"}),
    "extra_fields": frozenset({"conn", "count"}),
    "heartbeat_delay": frozenset({"conn", "seconds", "duration"}),
    "heartbeat_withhold": frozenset({"conn", "seconds"}),
    "reject": frozenset({"conn", "seconds", "mode"}),
    "too_slow": frozenset({"conn"}),
    "maintenance": frozenset({"seconds"}),
    "poison": frozenset({"conn", "count", "bytes"}),
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault to inject: ``kind``, string parameters, and (for scheduled faults) the
    offset in wall seconds after the simulator started."""

    kind: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    at_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultSpecError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        unknown = set(self.params) - _ALLOWED_PARAMS[self.kind]
        if unknown:
            raise FaultSpecError(
                f"fault {self.kind}: unknown parameter(s) {sorted(unknown)}; "
                f"allowed: {sorted(_ALLOWED_PARAMS[self.kind])}"
            )
        for key in ("seconds", "duration"):
            if key in self.params:
                self.float_param(key, 0.0)
        for key in ("count", "bytes"):
            if key in self.params:
                self.int_param(key, 1)
        if self.params.get("mode", "error") not in ("error", "omit"):
            raise FaultSpecError("fault reject: mode must be 'error' or 'omit'")
        if self.at_s < 0:
            raise FaultSpecError("a fault cannot be scheduled before the start")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def conn(self) -> str:
        return self.params.get("conn", "all")

    def float_param(self, key: str, default: float) -> float:
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise FaultSpecError(f"fault {self.kind}: {key}={raw!r} is not a number") from None
        if value < 0:
            raise FaultSpecError(f"fault {self.kind}: {key} must be >= 0")
        return value

    def int_param(self, key: str, default: int) -> int:
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise FaultSpecError(f"fault {self.kind}: {key}={raw!r} is not an integer") from None
        if value < 1:
            raise FaultSpecError(f"fault {self.kind}: {key} must be >= 1")
        return value


POISON_SHAPES: Final = ("negative_ts", "far_future_ts", "nan_strings", "huge_field")
POISON_HUGE_BYTES: Final = 10 * 1024 * 1024
_YEAR_10000_MS: Final = 253_402_300_800_000
"""10000-01-01T00:00:00Z in ms: past the last timestamp QuestDB stores (year 9999)."""
_DAY_MS: Final = 86_400_000


def poison_ticker(
    shape: str, instrument: str, n: int, now_ms: int, huge_bytes: int = POISON_HUGE_BYTES
) -> tuple[bytes, int]:
    """The ``data`` of a ``poison`` ticker notification of ``instrument`` and its exchange
    timestamp in µs (the send-log key). ``n`` (unique per poison frame) makes every key
    unique: no frame the market model sends shares it, so a poison row never overwrites
    a real one (DEDUP upserts on the key).

    * ``negative_ts``: ``timestamp`` -n ms (before 1970);
    * ``far_future_ts``: year 10000 + n ms (QuestDB answers 500 for a row past year 9999);
    * ``nan_strings``: ``"NaN"`` / ``"Infinity"`` / ``"nan"`` strings in number fields,
      timestamp one day ago + n ms;
    * ``huge_field``: a ``huge_bytes``-long ``underlying_index`` (a SYMBOL column),
      timestamp one day ago + n ms."""
    base: dict[str, object] = {"instrument_name": instrument, "state": "open", "interest_rate": 0.0}
    if shape == "negative_ts":
        ts_ms = -n
        base.update(best_bid_price=0.01, best_bid_amount=1.0, mark_price=0.012)
    elif shape == "far_future_ts":
        ts_ms = _YEAR_10000_MS + n
        base.update(best_bid_price=0.01, best_bid_amount=1.0, mark_price=0.012)
    elif shape == "nan_strings":
        ts_ms = now_ms - _DAY_MS + n
        base.update(best_bid_price="NaN", best_bid_amount="Infinity", mark_price="nan", mark_iv="-Infinity")
    elif shape == "huge_field":
        ts_ms = now_ms - _DAY_MS + n
        base.update(underlying_index="X" * huge_bytes, mark_price=0.012)
    else:
        raise FaultSpecError(f"unknown poison shape {shape!r}; known: {', '.join(POISON_SHAPES)}")
    base["timestamp"] = ts_ms
    return orjson.dumps(base), ts_ms * 1000


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``KIND[:k=v,k=v][@AT_SECONDS]``, e.g. ``silence:conn=c1,seconds=5@10``."""
    body, _, at = text.strip().partition("@")
    kind, _, params_text = body.partition(":")
    params: dict[str, str] = {}
    if params_text:
        for item in params_text.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise FaultSpecError(f"fault {text!r}: parameter {item!r} is not key=value")
            params[key.strip()] = value.strip()
    at_s = 0.0
    if at:
        try:
            at_s = float(at)
        except ValueError:
            raise FaultSpecError(f"fault {text!r}: start {at!r} is not a number of seconds") from None
    return FaultSpec(kind.strip(), params, at_s)


@dataclass(slots=True)
class FaultRecord:
    """One injected fault as the send log keeps it. Times are wall µs; ``end_us`` is None
    while the fault is active, equal to ``start_us`` for instantaneous faults."""

    fault_id: int
    kind: str
    connection: str
    """A connection id, or ``all``."""
    start_us: int
    end_us: int | None
    instruments: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""
    """What actually happened (e.g. the withheld change_ids or trade_seqs)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "fault_id": self.fault_id,
            "kind": self.kind,
            "connection": self.connection,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "instruments": list(self.instruments),
            "params": dict(self.params),
            "detail": self.detail,
        }
