"""Channel names: parsing and validation against what the simulator can serve (pure).

Accepted (``{I}`` = 100ms or agg2; ``raw`` is refused as for an unauthenticated client;
``{C}`` = a listed currency or ``any``; ``{K}`` = option, future, option_combo, combo
or any): ``ticker.{instrument}.{I}``, ``book.{instrument}.{I}``,
``trades.{instrument}.{I}``, ``trades.{K}.{C}.{I}``, ``deribit_price_index.{c}_usd``,
``instrument.state.{K}.{C}``, ``platform_state``,
``platform_state.public_methods_state``. ``agg2`` channels carry the same cadence as
``100ms`` ones. Grouped books (``book.{instrument}.{group}.{depth}.{interval}``) are not
simulated and count as unknown.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

PUBLIC_INTERVALS = ("100ms", "agg2")
KIND_NAMES = ("option", "future", "option_combo", "combo", "any")


class Verdict(enum.Enum):
    OK = "ok"
    RAW = "raw"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """How a channel name is judged: ``instrument_exists`` answers for instrument channels,
    ``extra_known`` whitelists names (replay captures)."""

    instrument_exists: Callable[[str], bool]
    extra_known: frozenset[str] = frozenset()
    allow_raw: bool = False
    currencies: tuple[str, ...] = ("ETH",)
    index_names: tuple[str, ...] = ("eth_usd",)


def judge(channel: str, rule: ChannelRule) -> Verdict:
    if channel in rule.extra_known:
        return Verdict.OK
    parts = channel.split(".")
    head = parts[0]
    if channel in ("platform_state", "platform_state.public_methods_state"):
        return Verdict.OK
    if head == "deribit_price_index":
        return Verdict.OK if len(parts) == 2 and parts[1] in rule.index_names else Verdict.UNKNOWN
    if head == "instrument" and len(parts) == 4 and parts[1] == "state":
        ok = parts[2] in KIND_NAMES and (parts[3] in rule.currencies or parts[3] == "any")
        return Verdict.OK if ok else Verdict.UNKNOWN
    if head in ("ticker", "book", "trades"):
        if len(parts) == 4 and head == "trades":
            kind, cur, interval = parts[1], parts[2], parts[3]
            if kind in KIND_NAMES and (cur in rule.currencies or cur == "any"):
                return _interval_verdict(interval, rule)
            return Verdict.UNKNOWN
        if len(parts) == 3:
            if not rule.instrument_exists(parts[1]):
                return Verdict.UNKNOWN
            return _interval_verdict(parts[2], rule)
    return Verdict.UNKNOWN


def _interval_verdict(interval: str, rule: ChannelRule) -> Verdict:
    if interval in PUBLIC_INTERVALS:
        return Verdict.OK
    if interval == "raw":
        return Verdict.OK if rule.allow_raw else Verdict.RAW
    return Verdict.UNKNOWN
