"""Where the Iceberg tables over the archive live: ``LakeConfig`` (pure).

* **catalog**: Iceberg's SQL catalog (two tables, ``iceberg_tables`` and
  ``iceberg_namespace_properties``) in a schema of the warm PostgreSQL (``lake.catalog_schema``;
  by default the warm store itself, as its schema owner): no new service. pyiceberg
  reaches it through SQLAlchemy + psycopg, Spark and Trino through JDBC
  (``org.apache.iceberg.jdbc.JdbcCatalog``) with the same catalog **name**: both look
  tables up by (catalog name, namespace, table).
* **data**: the archive's own Parquet files, registered in place (never copied or
  rewritten): ``file:///<dir>/table=quotes/month=2026-11/part-0000.parquet`` for a local
  target, ``s3://<bucket>/<prefix>/table=...`` for ``b2://<bucket>/<prefix>`` (B2 is
  S3-compatible: ``lake.s3_endpoint``, the same key pair).
* **metadata** (table metadata JSON, manifests): ``lake.warehouse``, by default
  ``<target>/_iceberg/`` — beside the data, under a name Hive-style readers skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tickarchive.archive.errors import InvalidArgument
from tickarchive.settings import Settings


def data_root(target_url: str) -> str:
    """The URI prefix (ending in ``/``) of the archive's keys at ``target_url``."""
    if target_url.startswith("b2://"):
        rest = target_url[len("b2://") :].strip("/")
        if not rest.split("/")[0]:
            raise InvalidArgument(f"invalid B2 target {target_url!r}: expected b2://bucket/prefix")
        return f"s3://{rest}/"
    if "://" in target_url and not target_url.startswith("file://"):
        raise InvalidArgument(f"unsupported archive target {target_url!r}")
    path = target_url[len("file://") :] if target_url.startswith("file://") else target_url
    return Path(path).resolve().as_uri().rstrip("/") + "/"


@dataclass(frozen=True, slots=True)
class LakeConfig:
    catalog_name: str
    namespace: str
    dsn: str
    """libpq DSN of the PostgreSQL holding the catalog."""
    schema: str
    """PostgreSQL schema of the catalog tables."""
    data_root: str
    """URI prefix of the archive's keys (``file:///...`` or ``s3://bucket/prefix/``)."""
    warehouse: str
    """URI where Iceberg writes table metadata."""
    io_properties: dict[str, str] = field(default_factory=dict)
    """pyiceberg FileIO properties (S3 endpoint and keys for B2)."""

    @classmethod
    def from_settings(cls, settings: Settings, target_url: str | None = None, dsn: str | None = None) -> LakeConfig:
        from tickarchive.store.dialect import warm_dsns

        lake = settings.lake
        url = target_url or settings.archive.target
        root = data_root(url)
        io: dict[str, str] = {}
        if root.startswith("s3://"):
            if lake.s3_endpoint is None:
                raise InvalidArgument("a b2:// target needs lake.s3_endpoint (e.g. https://s3.us-west-004.backblazeb2.com)")
            io = {
                "s3.endpoint": lake.s3_endpoint,
                "s3.region": lake.s3_region,
                "s3.access-key-id": os.environ.get("B2_APPLICATION_KEY_ID", ""),
                "s3.secret-access-key": os.environ.get("B2_APPLICATION_KEY", ""),
            }
        return cls(
            catalog_name=lake.catalog_name,
            namespace=lake.namespace,
            dsn=dsn or lake.catalog_dsn or warm_dsns(settings.postgres).owner,
            schema=lake.catalog_schema,
            data_root=root,
            warehouse=(lake.warehouse or root + "_iceberg").rstrip("/"),
            io_properties=io,
        )

    def _params(self) -> dict[str, str]:
        return {k: str(v) for k, v in conninfo_to_dict(self.dsn).items() if v is not None}

    @property
    def sqlalchemy_url(self) -> str:
        """The catalog for pyiceberg: SQLAlchemy + psycopg 3, ``search_path`` = the schema."""
        from sqlalchemy.engine import URL

        p = self._params()
        query = {"options": f"-c search_path={self.schema}"}
        if "sslmode" in p:
            query["sslmode"] = p["sslmode"]
        url = URL.create(
            "postgresql+psycopg",
            username=p.get("user"),
            password=p.get("password"),
            host=p.get("host", "127.0.0.1"),
            port=int(p["port"]) if "port" in p else None,
            database=p.get("dbname"),
            query=query,
        )
        return url.render_as_string(hide_password=False)

    @property
    def jdbc_url(self) -> str:
        """The catalog for Spark/Trino (pgJDBC), same database and schema."""
        p = self._params()
        return f"jdbc:postgresql://{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p.get('dbname', '')}" + (
            f"?currentSchema={self.schema}"
        )

    @property
    def jdbc_user(self) -> str:
        return self._params().get("user", "")

    @property
    def jdbc_password(self) -> str:
        return self._params().get("password", "")

    def key_uri(self, key: str) -> str:
        """The URI of the archive object ``key``."""
        return self.data_root + key

    def key_of(self, uri: str) -> str | None:
        """The archive key of ``uri`` (None when it is not under the data root). Java writes
        ``file:/x`` where Python writes ``file:///x``: both are accepted."""
        for root in (self.data_root, self.data_root.replace("file:///", "file:/", 1)):
            if uri.startswith(root):
                return uri[len(root) :]
        return None
