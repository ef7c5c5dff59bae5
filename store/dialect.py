"""The warm store's vocabulary: its two dialects and the DSNs of its three roles.

* ``Dialect.TIMESCALEDB``: hypertables with 1-day chunks, compression, continuous
  aggregates (production: a real TimescaleDB; tests: the PGlite TimescaleDB build);
* ``Dialect.POSTGRES``: plain PostgreSQL with daily range partitions and rollup tables
  the rollover fills (the embedded default).

Roles (docs/operations.md): the owner runs migrations, compresses and refreshes
aggregates; the writer loads; the reader only selects (the API).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from psycopg.conninfo import make_conninfo

from tickarchive.settings import PostgresSettings


class Dialect(enum.StrEnum):
    TIMESCALEDB = "timescaledb"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class WarmDsns:
    owner: str
    """Schema owner: migrations, refreshing continuous aggregates."""
    writer: str
    """Loads (rollover)."""
    reader: str
    """Read-only (API)."""


def warm_dsns(s: PostgresSettings) -> WarmDsns:
    """The three roles' DSNs: ``postgres.dsn`` (an external server) for owner and writer,
    else the embedded server's roles; ``postgres.reader_dsn`` when set."""
    if s.dsn is not None:
        return WarmDsns(s.dsn, s.dsn, s.reader_dsn or s.dsn)

    def dsn(role: str) -> str:
        return make_conninfo(
            host=s.host, port=s.port, user=role, password=s.password, dbname=s.database, sslmode="disable"
        )

    return WarmDsns(dsn(s.owner_role), dsn(s.writer_role), s.reader_dsn or dsn(s.reader_role))


def is_pglite_version(version: str) -> bool:
    """PGlite (PostgreSQL compiled to WebAssembly) reports its emscripten toolchain."""
    v = version.lower()
    return "emscripten" in v or "wasm" in v or "emcc" in v
