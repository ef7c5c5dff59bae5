"""A session's settings and the channel-name helpers it shares with the collector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionConfig:
    connection: str
    """Connection id, as journaled and written to the gaps table (``c0``, ``c1``, ...)."""
    heartbeat_interval_s: int = 10
    channels_per_request: int = 250
    stale_connection_s: float = 15.0
    stale_instrument_s: float = 10.0

    @classmethod
    def from_settings(cls, deribit: Any, connection: str) -> SessionConfig:
        """From ``tickarchive.settings.DeribitSettings``."""
        return cls(
            connection=connection,
            heartbeat_interval_s=deribit.heartbeat_interval_s,
            channels_per_request=deribit.channels_per_request,
            stale_connection_s=deribit.stale_connection_s,
            stale_instrument_s=deribit.stale_instrument_s,
        )


def instrument_of_channel(channel: str) -> str | None:
    """``ticker.X.100ms`` / ``book.X.100ms`` / ``book.X.none.10.100ms`` / ``trades.X.100ms``
    → ``X``; channels that are not about one instrument → ``None``."""
    parts = channel.split(".")
    if len(parts) >= 2 and parts[0] in ("ticker", "book", "quote", "incremental_ticker"):
        return parts[1]
    if len(parts) == 3 and parts[0] == "trades" and "-" in parts[1]:
        return parts[1]
    return None


def book_channel_of(channel_template: str, instrument: str) -> str:
    return channel_template.format(instrument=instrument)
