"""The exception tree of the ``ingest`` package.

Every failure the collector, the journal, replay or the CLI can report to an operator
derives from ``IngestError`` (itself a ``TickarchiveError``). Foreign errors (``OSError``
from the file system, ``pyarrow`` errors, ...) are translated at the boundary that meets
them, with the original chained as ``__cause__``.

Malformed *frames* are not exceptions: the normalizer returns a ``Malformed`` outcome
(``tickarchive.venues.deribit.normalize``) so that one bad frame never stops the collector.

The tree (each class's docstring says when it is raised)::

    TickarchiveError
    └── IngestError
        ├── JournalError
        │   ├── JournalFull
        │   └── JournalLocked
        ├── CaptureError
        ├── ReplayError
        └── BackfillError
"""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class IngestError(TickarchiveError):
    """Base of every ``ingest`` error."""


class JournalError(IngestError):
    """The journal cannot be opened, read or written."""


class JournalFull(JournalError):
    """The journal's disk is full (ENOSPC) or below its free-space floor.

    Nothing was written: the record that raised it is not in the journal and
    ``append`` can be retried later with the same frame. The collector turns this into
    back-pressure (stop reading sockets) and an alert, never a silent drop.
    """



class JournalLocked(JournalError):
    """Another process holds the journal directory's writer lock."""


class CaptureError(IngestError):
    """A capture or replay file cannot be read (missing, unreadable, not text)."""


class ReplayError(IngestError):
    """Replay could not write its output (Parquet directory, QuestDB)."""


class BackfillError(IngestError):
    """The history API or QuestDB could not be read for a backfill."""
