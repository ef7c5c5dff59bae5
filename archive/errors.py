"""The archive's exception tree.

Everything the archive raises on purpose derives from ``ArchiveError`` (itself a
``TickarchiveError``, so the CLI prints it as one line and exits non-zero). Foreign
errors (``OSError``, b2sdk, psycopg, pyarrow) are translated where they cross into
this package.

The tree (each class's docstring says when it is raised)::

    TickarchiveError
    └── ArchiveError
        ├── InvalidArgument
        ├── TargetError
        │   └── ObjectNotFound
        ├── ManifestError
        ├── UnsortedInput
        ├── SourceError
        ├── RefusedExport
        ├── LakeError
        └── IntegrityError
            └── RowCountMismatch
"""

from __future__ import annotations

from collections.abc import Sequence

from tickarchive.errors import InvalidValue, TickarchiveError


class ArchiveError(TickarchiveError):
    """Base of every archive error."""


class InvalidArgument(ArchiveError, InvalidValue):
    """A month, day, table name or target URL that cannot be used."""


class TargetError(ArchiveError):
    """Reading from or writing to an archive target failed (disk, network, B2)."""


class ObjectNotFound(TargetError):
    """The target has no object under the requested key."""

    def __init__(self, key: str, target: str) -> None:
        super().__init__(f"{target}: no object {key!r}")
        self.key = key


class ManifestError(ArchiveError):
    """A manifest or index is missing, unreadable or malformed."""


class UnsortedInput(ArchiveError):
    """The source yielded rows out of (segment_by, ts) order."""


class SourceError(ArchiveError):
    """The source the archive exports from failed."""



class RefusedExport(ArchiveError):
    """An export that would replace a good archive with less data."""


class EmptyMonth(RefusedExport):
    """An export of a month the source holds no rows of, in any table: nothing to archive
    (an empty archive must never pass for an archived, verified month)."""


class IntegrityError(ArchiveError):
    """Stored data does not match what was expected (hashes, row counts, ts ranges).

    ``problems`` holds one line per problem, each naming the file it concerns.
    """

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        lines = [summary, *(f"  {p}" for p in problems)]
        super().__init__("\n".join(lines))
        self.summary = summary
        self.problems = tuple(problems)


class RowCountMismatch(IntegrityError):
    """The rows written do not equal the rows the source reported."""


class LakeError(ArchiveError):
    """The Iceberg catalog or a table over the archive cannot be opened, read or committed
    to, or a registered snapshot does not hold exactly the manifest's files and rows."""
