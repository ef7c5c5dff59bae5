"""The archived months as Apache Iceberg tables (docs/archive.md, "The lake as tables").

One Iceberg table per archive table (``<namespace>.quotes``, ``.trades``, ...), with the
schema of the archive's files, partitioned by ``month(ts)`` and sorted like them. Each
manifest (``_manifests/table=T/month=M.json``, kept as it is: SHA-256 per file) is
registered in place by ``Lake.register``:

* a month the table does not hold yet is appended (``add_files``: Iceberg reads each
  file's footer for its statistics; nothing is copied or rewritten);
* a month whose manifest names other files than the table's current snapshot holds (a
  new generation: late rows, or the month re-derived from the raw journal after a parser
  fix) is replaced by **one** ``overwrite`` snapshot that removes the old files and adds
  the new ones. The old snapshot stays readable (time travel: Spark ``VERSION AS OF``,
  pyiceberg/polars ``snapshot_id``) as long as its files exist, which is why, with
  ``lake.enabled``, ``archive export`` keeps superseded generations;
* a month the table already holds with exactly the manifest's files is left alone.

Each snapshot's summary carries ``tickarchive.month``, ``tickarchive.generation``,
``tickarchive.manifest-sha256``, ``tickarchive.rows`` and an optional ``tickarchive.note``;
``Lake.versions`` lists them (``tickarchive archive versions``). After every commit the
snapshot's files and row count are checked against the manifest.

The tables carry ``gc.enabled=false``: Iceberg's file clean-up (``DROP TABLE ... PURGE``,
expiring snapshots with file deletion, orphan-file removal) would delete the archive's
own Parquet files, and refuses to run on them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy.exc import SQLAlchemyError

from tickarchive.archive import layout
from tickarchive.archive import manifest as mf
from tickarchive.archive.catalog import manifest_sha256
from tickarchive.archive.errors import LakeError
from tickarchive.archive.lake import LakeConfig
from tickarchive.archive.parquet_files import file_schema, sort_columns
from tickarchive.months import Month
from tickarchive.tables import Table
from tickarchive.tables import table as table_named

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger(__name__)

PROP_MONTH = "tickarchive.month"
PROP_GENERATION = "tickarchive.generation"
PROP_MANIFEST = "tickarchive.manifest-sha256"
PROP_ROWS = "tickarchive.rows"
PROP_NOTE = "tickarchive.note"
TABLE_PROPERTIES = {
    "format-version": "2",
    "gc.enabled": "false",
    "write.parquet.compression-codec": "zstd",
    "tickarchive.source": "archive manifests (files registered in place)",
}


@dataclass(frozen=True, slots=True)
class Registration:
    table: str
    month: Month
    status: str
    """``registered`` (month appended), ``replaced`` (new generation) or ``up-to-date``."""
    snapshot_id: int | None
    files: int
    rows: int


@dataclass(frozen=True, slots=True)
class Version:
    table: str
    snapshot_id: int
    parent_id: int | None
    committed_at: dt.datetime
    operation: str
    month: str | None
    generation: int | None
    manifest_sha256: str | None
    added_rows: int
    deleted_rows: int
    total_rows: int
    note: str
    current: bool


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    key: str
    """Archive key (``table=T/month=M/part-....parquet``)."""
    uri: str
    rows: int
    bytes: int


def _month_filter(month: Month) -> str:
    """A row filter selecting ``month`` (prunes the scan to its partition)."""

    def iso(us: int) -> str:
        return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC).isoformat()

    return f"ts >= '{iso(month.start_us)}' AND ts < '{iso(month.end_us)}'"


class Lake:
    """The Iceberg catalog over one archive target."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self._ensure_schema()
        from pyiceberg.catalog.sql import SqlCatalog
        from pyiceberg.exceptions import NamespaceAlreadyExistsError

        props = {"uri": config.sqlalchemy_url, "warehouse": config.warehouse, **config.io_properties}
        try:
            self.catalog: SqlCatalog = SqlCatalog(config.catalog_name, **props)
            if (config.namespace,) not in self.catalog.list_namespaces():
                with contextlib.suppress(NamespaceAlreadyExistsError):
                    self.catalog.create_namespace(config.namespace)
        except (SQLAlchemyError, ValueError, OSError) as exc:
            raise LakeError(f"Iceberg catalog {config.catalog_name!r} in schema {config.schema!r}: {exc}") from exc

    def _ensure_schema(self) -> None:
        """The catalog's PostgreSQL schema, readable by the warm store's read-only group."""
        try:
            with psycopg.connect(self.config.dsn, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.config.schema]).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.config.schema)))
                    has_read = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'tickarchive_read'").fetchone()
                    if has_read:
                        ident = sql.Identifier(self.config.schema)
                        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO tickarchive_read").format(ident))
                        conn.execute(
                            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO tickarchive_read")
                            .format(ident)
                        )
        except psycopg.Error as exc:
            raise LakeError(
                f"cannot create the catalog schema {self.config.schema!r} (run as the schema owner, or create it "
                f"once): {str(exc).strip()}"
            ) from exc

    # ---- tables ----------------------------------------------------------------------

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.config.namespace, table)

    def table(self, table: Table, create: bool = True) -> IcebergTable:
        from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

        try:
            return self.catalog.load_table(self.identifier(table.name))
        except NoSuchTableError:
            if not create:
                raise LakeError(f"no Iceberg table {self.config.namespace}.{table.name}") from None
        try:
            return self._create(table)
        except TableAlreadyExistsError:  # created concurrently
            return self.catalog.load_table(self.identifier(table.name))

    def _create(self, table: Table) -> IcebergTable:
        from pyiceberg.table.name_mapping import create_mapping_from_schema
        from pyiceberg.transforms import IdentityTransform, MonthTransform

        schema = file_schema(table).remove_metadata()
        tbl = self.catalog.create_table(
            self.identifier(table.name),
            schema=schema,
            location=f"{self.config.warehouse}/{self.config.namespace}/{table.name}",
            properties=TABLE_PROPERTIES,
        )
        with tbl.transaction() as tx:
            with tx.update_spec() as spec:
                spec.add_field("ts", MonthTransform(), "ts_month")
            with tx.update_sort_order() as order:
                for col in sort_columns(table):
                    order.asc(col, IdentityTransform())
            # files carry no field ids: they are read by column name
            mapping = create_mapping_from_schema(tbl.schema()).model_dump_json()
            tx.set_properties({"schema.name-mapping.default": mapping})
        return self.catalog.load_table(self.identifier(table.name))

    def tables(self) -> list[str]:
        return sorted(name for _ns, name in self.catalog.list_tables(self.config.namespace))

    # ---- registering manifests ---------------------------------------------------------

    def month_files(self, tbl: IcebergTable, table: str, month: Month, snapshot_id: int | None = None) -> list[Any]:
        """The data files (pyiceberg ``DataFile``) of ``month`` in a snapshot (default: current)."""
        if snapshot_id is None and tbl.current_snapshot() is None:
            return []
        prefix = self.config.key_uri(layout.month_dir(table, month))
        scan = tbl.scan(row_filter=_month_filter(month), snapshot_id=snapshot_id)
        return [t.file for t in scan.plan_files() if t.file.file_path.startswith(prefix)]

    def register(self, manifest: mf.MonthManifest, note: str = "") -> Registration:
        """Make the table's current snapshot hold exactly ``manifest``'s files for its month."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        table = table_named(manifest.table)
        month = Month.parse(manifest.month)
        tbl = self.table(table)
        wanted = [self.config.key_uri(f.path) for f in manifest.files if f.rows > 0]
        old = self.month_files(tbl, table.name, month)
        if sorted(f.file_path for f in old) == sorted(wanted):
            snap = tbl.current_snapshot()
            return Registration(table.name, month, "up-to-date", snap.snapshot_id if snap else None, len(wanted),
                                manifest.total_rows)
        props = {
            PROP_MONTH: manifest.month,
            PROP_GENERATION: str(manifest.generation),
            PROP_MANIFEST: manifest_sha256(manifest),
            PROP_ROWS: str(manifest.total_rows),
        }
        if note:
            props[PROP_NOTE] = note
        try:
            with tbl.transaction() as tx:
                if not old:
                    tx.add_files(wanted, snapshot_properties=props, check_duplicate_files=True)
                else:
                    with tx.update_snapshot(snapshot_properties=props).overwrite() as ow:
                        for f in old:
                            ow.delete_data_file(f)
                        for uri in wanted:
                            ow.append_data_file(parquet_file_to_data_file(tbl.io, tx.table_metadata, uri))
        except (CommitFailedException, SQLAlchemyError, ValueError, OSError) as exc:
            raise LakeError(
                f"{table.name} {month}: registering generation {manifest.generation} failed: {exc}"
            ) from exc
        tbl = self.table(table, create=False)
        snap = tbl.current_snapshot()
        self._check(tbl, manifest, wanted)
        status = "replaced" if old else "registered"
        log.info("lake: %s %s %s (generation %d, snapshot %s)", table.name, month, status, manifest.generation,
                 snap.snapshot_id if snap else None)
        return Registration(table.name, month, status, snap.snapshot_id if snap else None, len(wanted),
                            manifest.total_rows)

    def _check(self, tbl: IcebergTable, manifest: mf.MonthManifest, wanted: list[str]) -> None:
        files = self.month_files(tbl, manifest.table, Month.parse(manifest.month))
        got = sorted(f.file_path for f in files)
        rows = sum(f.record_count for f in files)
        if got != sorted(wanted) or rows != manifest.total_rows:
            raise LakeError(
                f"{manifest.table} {manifest.month}: the new snapshot holds {len(got)} files / {rows} rows, the "
                f"manifest {len(wanted)} files / {manifest.total_rows} rows"
            )

    def register_all(self, manifests: Iterator[mf.MonthManifest], note: str = "") -> list[Registration]:
        return [self.register(m, note) for m in manifests]

    # ---- reading -------------------------------------------------------------------------

    def versions(self, table: str, month: str | None = None) -> list[Version]:
        """The table's snapshots, oldest first (only those registering ``month`` if given)."""
        tbl = self.table(table_named(table), create=False)
        current = tbl.current_snapshot()
        out = []
        for s in tbl.snapshots():
            summary = s.summary
            extra: dict[str, str] = dict(summary.additional_properties) if summary is not None else {}
            if month is not None and extra.get(PROP_MONTH) != month:
                continue
            gen = extra.get(PROP_GENERATION)
            out.append(
                Version(
                    table=table,
                    snapshot_id=s.snapshot_id,
                    parent_id=s.parent_snapshot_id,
                    committed_at=dt.datetime.fromtimestamp(s.timestamp_ms / 1000, dt.UTC),
                    operation=summary.operation.value if summary is not None else "",
                    month=extra.get(PROP_MONTH),
                    generation=int(gen) if gen is not None else None,
                    manifest_sha256=extra.get(PROP_MANIFEST),
                    added_rows=int(extra.get("added-records", 0)),
                    deleted_rows=int(extra.get("deleted-records", 0)),
                    total_rows=int(extra.get("total-records", 0)),
                    note=extra.get(PROP_NOTE, ""),
                    current=current is not None and s.snapshot_id == current.snapshot_id,
                )
            )
        return out

    def snapshot_files(self, table: str, snapshot_id: int | None = None) -> list[SnapshotFile]:
        """Every data file a snapshot (default: the current one) reads, with its archive key."""
        tbl = self.table(table_named(table), create=False)
        if snapshot_id is None and tbl.current_snapshot() is None:
            return []
        out = []
        for task in tbl.scan(snapshot_id=snapshot_id).plan_files():
            f = task.file
            key = self.config.key_of(f.file_path)
            if key is None:
                raise LakeError(f"{table}: data file {f.file_path} is not under the archive at {self.config.data_root}")
            out.append(SnapshotFile(key, f.file_path, f.record_count, f.file_size_in_bytes))
        return sorted(out, key=lambda f: f.key)

    def referenced_keys(self, table: str, month: Month) -> set[str]:
        """Archive keys of ``month`` that any snapshot of the table reads (files to keep)."""
        try:
            tbl = self.table(table_named(table), create=False)
        except LakeError:
            return set()
        prefix = self.config.key_uri(layout.month_dir(table, month))
        keys: set[str] = set()
        for s in tbl.snapshots():
            for task in tbl.scan(row_filter=_month_filter(month), snapshot_id=s.snapshot_id).plan_files():
                if task.file.file_path.startswith(prefix):
                    key = self.config.key_of(task.file.file_path)
                    if key is not None:
                        keys.add(key)
        return keys


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
