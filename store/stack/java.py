"""Finding a Java runtime new enough for the pinned QuestDB version."""

from __future__ import annotations

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


def find_java(java_home: Path | None, questdb_version: str) -> Path:
    """The java binary to run QuestDB with, or ``ToolMissingError`` saying what to install."""
    need = required_java_major(questdb_version)
    hint = (
        f"QuestDB {questdb_version} needs Java {need} or newer: install it "
        f"(e.g. apt-get install openjdk-{need}-jre-headless) or point questdb.java_home "
        "(TICKARCHIVE_QUESTDB__JAVA_HOME) at a JDK"
    )
    if java_home is not None:
        java = java_home / "bin" / "java"
        if not java.is_file():
            raise ToolMissingError(f"questdb.java_home={java_home} has no bin/java; {hint}")
    else:
        found = shutil.which("java")
        if found is None:
            raise ToolMissingError(f"java not found on PATH; {hint}")
        java = Path(found)
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"{java} -version failed ({exc}); {hint}") from None
    major = parse_java_major(out.stderr + out.stdout)
    if major is None:
        raise ToolMissingError(f"cannot tell the version of {java}; {hint}")
    if major < need:
        raise ToolMissingError(f"{java} is Java {major}; {hint}")
    return java
