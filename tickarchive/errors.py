"""The root of every package's exception tree.

Each package defines its own ``errors.py`` whose base class derives from
``TickarchiveError`` and translates foreign errors (OSError, psycopg, httpx, b2sdk, ...) at
its boundary; its docstring draws its tree. The CLI prints a ``TickarchiveError`` as one
line and exits non-zero; anything else is a bug and keeps its traceback::

    TickarchiveError
    ├── SettingsError            a setting is missing or invalid (tickarchive.settings)
    ├── InvalidValue             a month, day or name that cannot be used (also a ValueError)
    ├── VenueError               a venue adapter (tickarchive.venues.<name>.errors)
    │   └── VenueUnavailable     the exchange cannot be reached or read (retried)
    ├── IngestError              tickarchive.ingest.errors (journal, collector, replay)
    ├── StoreError               tickarchive.store.errors (stack, migrations, writer, rollover)
    ├── ArchiveError             tickarchive.archive.errors
    ├── ApiError                 tickarchive.api.errors
    ├── ProductError             tickarchive.products.errors
    ├── LoadtestError            tickarchive.loadtest.errors
    └── OpsError                 tickarchive.ops.errors (drill, quality report, demo)
"""

from __future__ import annotations


class TickarchiveError(Exception):
    """An expected failure with a message an operator can act on."""


class SettingsError(TickarchiveError):
    """A setting is missing or invalid. The message names the setting."""


class InvalidValue(TickarchiveError, ValueError):
    """A value given by an operator or read from a file cannot be used (a month, a day, a
    name); the message says what was expected."""


class VenueError(TickarchiveError):
    """Base of every venue adapter's errors (``tickarchive.venues.<name>.errors``)."""


class VenueUnavailable(VenueError):
    """The exchange (or its simulator) could not be reached, or its answer could not be
    read: callers retry with back-off."""
