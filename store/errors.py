"""The ``store`` package's exceptions.

Everything the store raises on purpose derives from ``StoreError`` (itself a
``TickarchiveError``: the CLI prints it as one line and exits 1). Foreign errors
(OSError, subprocess, psycopg, httpx) are translated into these at the boundary.

Every store module raises only these (none defines its own).

The tree (each class's docstring says when it is raised)::

    TickarchiveError
    └── StoreError
        ├── StackError
        │   ├── ToolMissingError
        │   ├── JarError
        │   ├── PortInUseError
        │   ├── ServerStartError
        │   ├── ServerStopError
        │   └── DsnUnreachableError
        ├── MigrationError
        ├── RolloverError
        │   ├── HotReadError
        │   ├── WarmLoadError
        │   ├── VerificationMismatch
        │   └── NotSealed
        ├── ExportFailed
        └── IlpHttpError
"""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class StoreError(TickarchiveError):
    """Base of every store error."""


class StackError(StoreError):
    """The local stack (QuestDB, PostgreSQL, the test TimescaleDB) could not be managed."""


class ToolMissingError(StackError):
    """A program the stack needs (java, mvn, node, npm, the PostgreSQL binaries) is absent or too old."""


class JarError(StackError):
    """The QuestDB jar could not be fetched or fails its checksum."""


class PortInUseError(StackError):
    """A port the stack must bind is taken by another process."""


class ServerStartError(StackError):
    """A server did not become healthy; it was stopped again. The message ends with its log tail."""


class ServerStopError(StackError):
    """A server could not be stopped."""


class DsnUnreachableError(StackError):
    """An external database named by a DSN cannot be reached."""


class MigrationError(StoreError):
    """A schema migration failed, or the applied ledger disagrees with the migration files."""


class RolloverError(StoreError):
    """The rollover (hot → warm) or a lifecycle step failed; nothing is dropped after it."""


class HotReadError(RolloverError):
    """Reading a day out of QuestDB (PG wire or /exp) failed."""


class ExportFailed(StoreError):
    """QuestDB's HTTP ``/exp`` did not deliver a readable result."""


class WarmLoadError(RolloverError):
    """Loading into, or reading back from, the warm store failed."""


class VerificationMismatch(RolloverError):
    """Hot and warm disagree (row counts or content checksums) for a (day, table)."""


class NotSealed(RolloverError):
    """A day asked for explicitly is not sealed yet (the message says why)."""


class IlpHttpError(StoreError):
    """A request was not acknowledged: transport failure or QuestDB refused the rows.

    ``status`` is QuestDB's HTTP status (None: no answer: unreachable, timed out, reset);
    ``line`` the 1-based line of the request QuestDB names in its error, when it does."""

    def __init__(self, message: str, status: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.line = line

    @property
    def rejects_rows(self) -> bool:
        """QuestDB answered that it will never accept (some of) these rows: a malformed or
        ill-typed row (400, 422) or a request too large to take at once (413). Anything
        else (5xx, no answer, 401/403: a configuration error) is worth retrying."""
        return self.status in (400, 413, 422)
