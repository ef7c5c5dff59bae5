"""The Deribit adapter's exceptions::

    TickarchiveError
    └── VenueError                    (tickarchive.errors: every adapter's base)
        └── DeribitError
            └── DeribitUnavailable    (also a VenueUnavailable: the collector retries)
                ├── DiscoveryError    get_instruments could not be fetched or read
                └── HistoryError      the history API could not be read

Malformed *frames* are not exceptions: the parsers return ``tickarchive.venue.Malformed``.
``httpx`` errors are translated where the adapter meets them.
"""

from __future__ import annotations

from tickarchive.errors import VenueError, VenueUnavailable


class DeribitError(VenueError):
    """Base of every Deribit adapter error."""


class DeribitUnavailable(DeribitError, VenueUnavailable):
    """Deribit (or its simulator) could not be reached, or its answer could not be read."""


class DiscoveryError(DeribitUnavailable):
    """``public/get_instruments`` could not be fetched or read."""


class HistoryError(DeribitUnavailable):
    """The history API (``get_last_trades_by_*``) could not be read."""
