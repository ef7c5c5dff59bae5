"""Bad input around the stack: corrupt jar, wrong pin, missing mvn/java, old java,
unreachable DSN, stale pid files. Each gives one clear error naming what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tickarchive.settings import PostgresSettings, QuestDBSettings
from tickarchive.store.dialect import Dialect
from tickarchive.store.errors import DsnUnreachableError, JarError, ToolMissingError
from tickarchive.store.stack import jar as jarmod
from tickarchive.store.stack.handles import WarmHandle
from tickarchive.store.stack.java import find_java, parse_java_major, required_java_major
from tickarchive.store.stack.pglite import PGliteServer
from tickarchive.store.stack.postgres import ExternalPostgres
from tickarchive.store.stack.procs import PidFile, free_port
from tickarchive.store.stack.status import Action, State

PIN = QuestDBSettings()


def test_a_corrupt_cached_jar_is_deleted_and_fetched_again(tmp_path: Path) -> None:
    jar = jarmod.jar_path(tmp_path, PIN.version)
    jar.write_bytes(b"PK\x03\x04 truncated download")
    assert jarmod.ensure_jar(tmp_path, PIN.version, PIN.jar_sha1) == jar
    assert jarmod.sha1_of(jar) == PIN.jar_sha1


def test_a_jar_that_never_matches_the_pin_is_an_error_and_not_kept(tmp_path: Path) -> None:
    wrong = "0" * 40
    with pytest.raises(JarError) as err:
        jarmod.ensure_jar(tmp_path, PIN.version, wrong)
    msg = str(err.value)
    assert f"has SHA-1 {PIN.jar_sha1}" in msg
    assert f"questdb.jar_sha1 (TICKARCHIVE_QUESTDB__JAR_SHA1) expects {wrong}" in msg
    assert not jarmod.jar_path(tmp_path, PIN.version).exists()
    assert jarmod.maven_repo_jar(PIN.version).is_file()  # Maven's good copy is left alone


def test_missing_mvn_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.m2 copy to fall back on: mvn is needed
    with pytest.raises(ToolMissingError, match=r"mvn \(Maven\) not found.*apt-get install maven"):
        jarmod.ensure_jar(tmp_path / "cache", PIN.version, PIN.jar_sha1)


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
    with pytest.raises(ToolMissingError, match=r"java not found on PATH; QuestDB 9\.3\.4 needs Java 17"):
        find_java(None, "9.3.4")


def test_the_real_java_is_new_enough() -> None:
    java = find_java(None, PIN.version)
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=True)
    major = parse_java_major(out.stderr)
    assert major is not None
    assert major >= 17


def test_an_unreachable_dsn_is_one_clear_error_without_the_password() -> None:
    port = free_port()
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
