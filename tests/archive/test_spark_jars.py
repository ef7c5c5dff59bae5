"""Spark's jars: downloaded once over HTTP(S) from a Maven repository, kept only when their
SHA-1 equals the pin (a local HTTP server stands in for Maven Central)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tickarchive.archive.errors import LakeError
from tickarchive.archive.lake import LakeConfig
from tickarchive.archive.spark import ICEBERG_SPARK_RUNTIME, MavenJar, ensure_jar, spark_conf

BODY = b"PK\x03\x04 not really a jar" * 1000


class _Repo(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Repo.hits.append(self.path)
        if self.path.endswith("/1.0/demo-1.0.jar"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Repo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Repo.hits = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/maven2"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_jar_is_kept_only_with_the_pinned_sha1(repo: str, tmp_path: Path) -> None:
    good = MavenJar("org.example", "demo", "1.0", hashlib.sha1(BODY).hexdigest())
    path = ensure_jar(tmp_path, good, repo)
    assert path.read_bytes() == BODY
    assert _Repo.hits == ["/maven2/org/example/demo/1.0/demo-1.0.jar"]
    assert ensure_jar(tmp_path, good, repo) == path
    assert len(_Repo.hits) == 1  # cached: no second download

    bad = MavenJar("org.example", "demo", "1.0", "0" * 40)
    path.unlink()
    with pytest.raises(LakeError, match="SHA-1"):
        ensure_jar(tmp_path, bad, repo)
    assert list(tmp_path.iterdir()) == []  # nothing half-trusted left behind

    with pytest.raises(LakeError, match="HTTP 404"):
        ensure_jar(tmp_path, MavenJar("org.example", "demo", "2.0", "0" * 40), repo)
    assert list(tmp_path.iterdir()) == []


def test_the_runtime_pin_and_spark_conf() -> None:
    assert ICEBERG_SPARK_RUNTIME.url("https://repo1.maven.org/maven2") == (
        "https://repo1.maven.org/maven2/org/apache/iceberg/iceberg-spark-runtime-4.1_2.13/1.12.0/"
        "iceberg-spark-runtime-4.1_2.13-1.12.0.jar"
    )
    cfg = LakeConfig("tickarchive", "tickarchive", "host=h port=5 user=u password=p dbname=d", "iceberg_catalog",
                     "file:///srv/lake/", "file:///srv/lake/_iceberg")
    conf = spark_conf(cfg, [Path("/x/a.jar"), Path("/x/b.jar")])
    assert conf["spark.sql.catalog.tickarchive.type"] == "jdbc"
    assert conf["spark.sql.catalog.tickarchive.uri"] == "jdbc:postgresql://h:5/d?currentSchema=iceberg_catalog"
    assert conf["spark.sql.catalog.tickarchive.jdbc.schema-version"] == "V1"
    assert conf["spark.sql.catalog.tickarchive.jdbc.init-catalog-tables"] == "false"
    assert conf["spark.jars"] == "/x/a.jar,/x/b.jar"
    assert "spark.sql.catalog.tickarchive.io-impl" not in conf
