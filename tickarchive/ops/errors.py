"""The ``ops`` exception tree (the applications that span packages)::

    TickarchiveError
    └── OpsError
        ├── DemoError            a part of the demo could not start
        ├── DrillError           the recovery drill could not run to the end
        ├── JournalRetentionError  journal prune could not read the journal or the archive
        └── QualityError         tickarchive.ops.quality.errors: the quality report
            ├── QualitySourceError   a store could not be read
            └── DayError             --day is not a day

Store, archive and ingest errors met on the way are translated into these with the step
that failed (``DrillError("restore quotes 2026-10: ...")``).
"""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class OpsError(TickarchiveError):
    """Base of every ``ops`` error."""


class DemoError(OpsError):
    """A part of the demo could not start."""


class JournalRetentionError(OpsError):
    """``journal prune`` could not read the journal or the archive, or delete a segment."""


class DrillError(OpsError):
    """The drill could not run to the end (a server, the archive or the journal failed)."""
