"""The archive as Iceberg tables (pyiceberg SQL catalog in the real PostgreSQL), read by
Apache Spark (pyspark local + the Iceberg runtime jar from Maven Central), DuckDB and
polars with the manifest's row counts and checksums; a month re-derived (a "parser fix":
same rows, other values) becomes a new snapshot, the old version stays readable, and
``archive versions`` lists both."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from tests.archive.conftest import MONTH, OPTIONS
from tickarchive.archive import catalog, synthetic
from tickarchive.archive.errors import InvalidArgument
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.iceberg import Lake
from tickarchive.archive.lake import LakeConfig, data_root
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.settings import LakeSettings, PathsSettings, Settings
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.tables import QUOTES, TRADES

KEEP = ExportOptions(
    zstd_level=OPTIONS.zstd_level, row_group_rows=OPTIONS.row_group_rows, file_rows=OPTIONS.file_rows,
    keep_superseded=True,
)


def _config(postgres: WarmHandle, root: Path, schema: str) -> LakeConfig:
    return LakeConfig(
        catalog_name="tickarchive",
        namespace="lake_" + schema[-8:],
        dsn=postgres.owner_dsn,
        schema=schema,
        data_root=data_root(str(root)),
        warehouse=data_root(str(root)) + "_iceberg",
    )


def _store(bid_factor: float = 1.0) -> MemoryStore:
    s = MemoryStore(batch_rows=700)
    q = synthetic.quotes(4500, MONTH, n_instruments=40)
    if bid_factor != 1.0:  # the "parser fix": the same rows, other values
        i = q.schema.get_field_index("bid_price")
        q = q.set_column(i, "bid_price", pc.multiply(q.column("bid_price"), bid_factor))
    s.insert(QUOTES, q)
    s.insert(TRADES, synthetic.trades(900, MONTH, n_instruments=40))
    return s


def aggregates(data: pa.Table) -> dict[str, Any]:
    """What every engine must agree on for one version of the month."""
    ts = data.column("ts").cast(pa.int64())
    return {
        "rows": data.num_rows,
        "instruments": pc.count_distinct(data.column("instrument")).as_py(),
        "min_ts": pc.min(ts).as_py(),
        "max_ts": pc.max(ts).as_py(),
        "bid_sum": pc.sum(data.column("bid_price")).as_py(),
    }


def _close(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert {k: v for k, v in a.items() if k != "bid_sum"} == {k: v for k, v in b.items() if k != "bid_sum"}
    assert a["bid_sum"] == pytest.approx(b["bid_sum"], rel=1e-12)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_versions_read_by_spark_duckdb_and_polars(
    postgres: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLARS_ICEBERG_PLANNER", "pyiceberg")  # no polars-iceberg plugin: plan with pyiceberg
    root = tmp_path / "lake"
    target = LocalTarget(root)
    cfg = _config(postgres, root, f"lake_{uuid.uuid4().hex[:8]}")
    lake = Lake(cfg)

    gen0 = export_month(_store(), target, QUOTES, MONTH, KEEP).manifest
    reg0 = lake.register(gen0)
    assert (reg0.status, reg0.rows, reg0.files) == ("registered", 4500, len(gen0.files))
    assert len(gen0.files) >= 2
    assert lake.register(gen0).status == "up-to-date"
    trades = export_month(_store(), target, TRADES, MONTH, KEEP).manifest
    assert lake.register(trades).status == "registered"

    # re-derived from the journal: same row count, other values -> forced, a new generation
    gen1 = export_month(_store(bid_factor=2.0), target, QUOTES, MONTH, KEEP, force=True).manifest
    assert gen1.generation == 1
    assert gen1.total_rows == gen0.total_rows
    reg1 = lake.register(gen1, note="re-derived: parser fix")
    assert reg1.status == "replaced"
    assert all((root / f.path).is_file() for f in gen0.files), "the old version's files are kept"

    versions = lake.versions("quotes", str(MONTH))
    assert [(v.generation, v.operation, v.current) for v in versions] == [(0, "append", False), (1, "overwrite", True)]
    assert [v.manifest_sha256 for v in versions] == [catalog.manifest_sha256(gen0), catalog.manifest_sha256(gen1)]
    assert versions[1].note == "re-derived: parser fix"
    assert (versions[1].added_rows, versions[1].deleted_rows, versions[1].total_rows) == (4500, 4500, 4500)
    snaps = {0: reg0.snapshot_id, 1: reg1.snapshot_id}
    manifests = {0: gen0, 1: gen1}
    assert snaps[0] == versions[0].snapshot_id

    expected: dict[int, dict[str, Any]] = {}
    for g, m in manifests.items():
        files = lake.snapshot_files("quotes", snaps[g])
        assert [f.key for f in files] == [e.path for e in m.files]
        assert [f.rows for f in files] == [e.rows for e in m.files]
        assert [_sha256(root / f.key) for f in files] == [e.sha256 for e in m.files]
        expected[g] = aggregates(pq.read_table([str(root / e.path) for e in m.files]))
        assert expected[g]["rows"] == m.total_rows
    assert expected[1]["bid_sum"] == pytest.approx(2 * expected[0]["bid_sum"])

    tbl = lake.table(QUOTES, create=False)
    # DuckDB: the files pyiceberg plans for each snapshot, read_parquet
    con = duckdb.connect()
    for g in manifests:
        paths = [t.file.file_path.removeprefix("file://") for t in tbl.scan(snapshot_id=snaps[g]).plan_files()]
        got = con.execute(
            "SELECT count(*), count(DISTINCT instrument), min(epoch_us(ts)), max(epoch_us(ts)), sum(bid_price) "
            "FROM read_parquet(?)", [paths]).fetchone()
        assert got is not None
        _close(dict(zip(("rows", "instruments", "min_ts", "max_ts", "bid_sum"), got, strict=True)), expected[g])
    # polars: scan_iceberg with time travel
    for g in manifests:
        frame = pl.scan_iceberg(tbl, snapshot_id=snaps[g]).collect()
        _close(aggregates(frame.to_arrow()), expected[g])

    # Spark: the same catalog through JDBC
    from tickarchive.archive import spark as sparkmod

    spark = sparkmod.session(cfg, PathsSettings().cache_dir, cores=1)
    try:
        t = f"{cfg.catalog_name}.{cfg.namespace}.quotes"
        assert spark.sql(f"SELECT count(*) FROM {t}").first()[0] == 4500
        for g in manifests:
            row = spark.sql(
                f"SELECT count(*), count(DISTINCT instrument), min(unix_micros(ts)), max(unix_micros(ts)), "
                f"sum(bid_price) FROM {t} VERSION AS OF {snaps[g]}"
            ).first()
            _close(dict(zip(("rows", "instruments", "min_ts", "max_ts", "bid_sum"), row, strict=True)), expected[g])
        files = spark.sql(f"SELECT file_path, record_count FROM {t}.files").collect()
        got_files = sorted((cfg.key_of(r[0]), r[1]) for r in files)
        assert got_files == [(e.path, e.rows) for e in gen1.files]
        for key, _n in got_files:
            assert key is not None
            assert _sha256(root / key) == next(e.sha256 for e in gen1.files if e.path == key)
        hist = spark.sql(
            f"SELECT snapshot_id, operation, summary['tickarchive.generation'] FROM {t}.snapshots ORDER BY committed_at"
        ).collect()
        assert [(r[0], r[1], r[2]) for r in hist] == [(snaps[0], "append", "0"), (snaps[1], "overwrite", "1")]
        assert spark.sql(f"SELECT count(*) FROM {cfg.catalog_name}.{cfg.namespace}.trades").first()[0] == 900
        # the archive's files are protected from Iceberg's own clean-up
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        with pytest.raises((PySparkException, Py4JJavaError), match=r"(?i)gc"):
            spark.sql(f"CALL {cfg.catalog_name}.system.expire_snapshots(table => '{cfg.namespace}.quotes', "
                      "older_than => TIMESTAMP '2100-01-01 00:00:00', retain_last => 1)").collect()
    finally:
        spark.stop()
    assert all((root / f.path).is_file() for f in gen0.files)


def test_register_and_versions_commands(postgres: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickarchive.cli.archive import register

    root = tmp_path / "lake"
    target = LocalTarget(root)
    schema = f"lake_{uuid.uuid4().hex[:8]}"
    for key, value in {
        "LAKE__CATALOG_DSN": postgres.owner_dsn,
        "LAKE__CATALOG_SCHEMA": schema,
        "LAKE__NAMESPACE": "cli",
        "ARCHIVE__TARGET": str(root),
    }.items():
        monkeypatch.setenv(f"TICKARCHIVE_{key}", value)
    export_month(_store(), target, QUOTES, MONTH, KEEP)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    r = runner.invoke(app, ["archive", "register"])
    assert r.exit_code == 0, r.output
    assert "quotes        2026-11  registered" in r.output
    r = runner.invoke(app, ["archive", "register", "--table", "quotes"])
    assert "up-to-date" in r.output
    export_month(_store(bid_factor=3.0), target, QUOTES, MONTH, KEEP, force=True)
    r = runner.invoke(app, ["archive", "register", "--note", "parser fix"])
    assert "replaced" in r.output, r.output
    r = runner.invoke(app, ["archive", "versions", "--table", "quotes", "--month", "2026-11"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if "2026-11" in ln]
    assert len(lines) == 2
    assert "append" in lines[0]
    assert "overwrite" in lines[1]
    assert "parser fix" in lines[1]
    assert " *" in lines[1]
    m = catalog.read_month_manifest(target, "quotes", MONTH)
    assert m is not None
    assert catalog.manifest_sha256(m)[:12] in lines[1]


def test_export_with_the_lake_on_registers_and_keeps_generations(
    postgres: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickarchive.cli.archive import register

    root = tmp_path / "lake"
    replay = tmp_path / "replay"
    replay.mkdir()
    oct_ = MONTH.plus(-1)
    pq.write_table(synthetic.quotes(1200, oct_, n_instruments=20), replay / "quotes.parquet")
    for key, value in {
        "LAKE__ENABLED": "true",
        "LAKE__CATALOG_DSN": postgres.owner_dsn,
        "LAKE__CATALOG_SCHEMA": f"lake_{uuid.uuid4().hex[:8]}",
        "ARCHIVE__TARGET": str(root),
        "ARCHIVE__STAGING_DIR": str(tmp_path / "staging"),
    }.items():
        monkeypatch.setenv(f"TICKARCHIVE_{key}", value)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    args = ["archive", "export", "--month", str(oct_), "--table", "quotes", "--from-dir", str(replay)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "lake registered" in r.output
    r = runner.invoke(app, [*args, "--force", "--note", "re-derived"])
    assert r.exit_code == 0, r.output
    assert "lake replaced" in r.output
    parts = sorted(p.name for p in (root / f"table=quotes/month={oct_}").glob("*.parquet"))
    assert parts == ["part-0000.parquet", "part-g1-0000.parquet"]
    m = catalog.read_month_manifest(LocalTarget(root), "quotes", oct_)
    assert m is not None
    assert m.generation == 1


def test_b2_targets_map_to_s3_uris() -> None:
    assert data_root("b2://tick-lake/prod") == "s3://tick-lake/prod/"
    assert data_root("b2://tick-lake") == "s3://tick-lake/"
    with pytest.raises(InvalidArgument):
        data_root("ftp://x")
    s = Settings(lake=LakeSettings(s3_endpoint="https://s3.us-west-004.backblazeb2.com", catalog_dsn="host=h dbname=d"))
    cfg = LakeConfig.from_settings(s, "b2://tick-lake/prod")
    assert cfg.warehouse == "s3://tick-lake/prod/_iceberg"
    assert cfg.io_properties["s3.endpoint"] == "https://s3.us-west-004.backblazeb2.com"
    assert cfg.key_uri("table=quotes/month=2026-11/part-0000.parquet").startswith("s3://tick-lake/prod/table=")
    with pytest.raises(InvalidArgument, match="s3_endpoint"):
        LakeConfig.from_settings(Settings(lake=LakeSettings(catalog_dsn="host=h")), "b2://tick-lake/prod")
    local = LakeConfig.from_settings(Settings(lake=LakeSettings(catalog_dsn="host=h port=5 user=u password=p "
                                                                            "dbname=d")), "/srv/lake")
    assert local.data_root == "file:///srv/lake/"
    assert local.key_of("file:/srv/lake/table=quotes/x.parquet") == "table=quotes/x.parquet"  # Java's form
    assert local.jdbc_url == "jdbc:postgresql://h:5/d?currentSchema=iceberg_catalog"
    assert "search_path" in local.sqlalchemy_url.replace("%3D", "=")
