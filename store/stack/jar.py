"""The QuestDB server jar: fetched from Maven Central with ``mvn``, checked by SHA-1.

The jar lands in ``<paths.cache_dir>/questdb-<version>.jar``, copied from Maven's local
repository (``~/.m2``) when that already holds it intact, else fetched by
``mvn dependency:copy``. A copy whose SHA-1 differs
from ``questdb.jar_sha1`` is deleted and fetched again once; if Maven's local repository
holds a damaged copy (it disagrees with its own ``.sha1`` file) that copy is deleted too,
so the refetch really downloads. A second mismatch is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from pathlib import Path

from tickarchive.store.errors import JarError, ToolMissingError

GROUP = "org.questdb"
ARTIFACT = "questdb"


def sha1_of(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def jar_path(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"{ARTIFACT}-{version}.jar"


def maven_repo_jar(version: str) -> Path:
    return (
        Path.home() / ".m2" / "repository" / GROUP.replace(".", "/") / ARTIFACT / version
        / f"{ARTIFACT}-{version}.jar"
    )


def _mvn_copy(version: str, cache_dir: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError(
            f"mvn (Maven) not found: it fetches the QuestDB jar {GROUP}:{ARTIFACT}:{version} once; "
            f"install it (apt-get install maven) or put the jar at {jar_path(cache_dir, version)}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-q", "-B", "dependency:copy",
        f"-Dartifact={GROUP}:{ARTIFACT}:{version}",
        f"-DoutputDirectory={cache_dir}",
        "-Dmdep.overWriteReleases=true",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise JarError(f"mvn did not fetch {GROUP}:{ARTIFACT}:{version} within 15 minutes") from None
    if out.returncode != 0 or not jar_path(cache_dir, version).is_file():
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {out.returncode}"
        raise JarError(
            f"mvn could not fetch {GROUP}:{ARTIFACT}:{version} from Maven Central "
            f"(is questdb.version right and Maven Central reachable?): {why}"
        )


def _copy_from_maven_repo(version: str, cache_dir: Path) -> bool:
    """Copy Maven's local copy when it matches its own published .sha1 (what mvn would do, minus the JVM)."""
    local = maven_repo_jar(version)
    sidecar = local.with_name(local.name + ".sha1")
    if not local.is_file() or not sidecar.is_file():
        return False
    published = (sidecar.read_text().split() or [""])[0].strip().lower()
    if not published or sha1_of(local) != published:
        return False
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = jar_path(cache_dir, version).with_suffix(".part")
    shutil.copyfile(local, tmp)
    tmp.replace(jar_path(cache_dir, version))
    return True


def _damaged_maven_copy(version: str) -> bool:
    """True (and the copy deleted) when Maven's local copy disagrees with its own .sha1."""
    local = maven_repo_jar(version)
    sidecar = local.with_name(local.name + ".sha1")
    if not local.is_file() or not sidecar.is_file():
        return False
    published = sidecar.read_text().split()[0].strip().lower() if sidecar.read_text().strip() else ""
    if published and sha1_of(local) != published:
        with contextlib.suppress(FileNotFoundError):
            local.unlink()
        return True
    return False


def ensure_jar(cache_dir: Path, version: str, expected_sha1: str) -> Path:
    """The path of a verified jar, fetching it if needed. Raises ``JarError``/``ToolMissingError``."""
    jar = jar_path(cache_dir, version)
    expected = expected_sha1.lower()
    if jar.is_file() and sha1_of(jar) == expected:
        return jar
    attempts = 0
    while True:
        attempts += 1
        with contextlib.suppress(FileNotFoundError):
            jar.unlink()
        if not _copy_from_maven_repo(version, cache_dir):
            _mvn_copy(version, cache_dir)
        actual = sha1_of(jar)
        if actual == expected:
            return jar
        if attempts == 1 and _damaged_maven_copy(version):
            continue
        jar.unlink()
        raise JarError(
            f"{GROUP}:{ARTIFACT}:{version} from Maven has SHA-1 {actual}, but questdb.jar_sha1 "
            f"(TICKARCHIVE_QUESTDB__JAR_SHA1) expects {expected}: fix the pin, or delete "
            f"{maven_repo_jar(version).parent} if the download is damaged"
        )
