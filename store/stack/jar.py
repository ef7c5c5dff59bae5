"""The QuestDB server jar: downloaded from Maven Central over HTTPS, checked by SHA-1.

No Maven needed. The jar lands in ``<paths.cache_dir>/questdb-<version>.jar`` (about
30 MB, once per machine), from the first of:

1. the cache itself, when its SHA-1 equals ``questdb.jar_sha1``;
2. Maven's local repository (``~/.m2``), when it holds an intact copy (it agrees with the
   pin): no download at all on machines that used Maven before;
3. ``GET {questdb.maven_repo_url}/org/questdb/questdb/<version>/questdb-<version>.jar``
   over HTTPS (Maven Central by default; a mirror by setting), streamed to a ``.part``
   file and renamed into place only when its SHA-1 equals the pin.

A download whose SHA-1 differs from the pin is deleted, never used, and reported with
both digests (fix the pin, or the mirror).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Final

import httpx

from tickarchive.store.errors import JarError

GROUP: Final = "org.questdb"
ARTIFACT: Final = "questdb"
MAVEN_CENTRAL: Final = "https://repo1.maven.org/maven2"
CHUNK_BYTES: Final = 1 << 20


def sha1_of(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def jar_path(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"{ARTIFACT}-{version}.jar"


def jar_url(repo_url: str, version: str) -> str:
    return f"{repo_url.rstrip('/')}/{GROUP.replace('.', '/')}/{ARTIFACT}/{version}/{ARTIFACT}-{version}.jar"


def maven_repo_jar(version: str) -> Path:
    return (
        Path.home() / ".m2" / "repository" / GROUP.replace(".", "/") / ARTIFACT / version
        / f"{ARTIFACT}-{version}.jar"
    )


def _copy_from_maven_repo(version: str, jar: Path, expected: str) -> bool:
    """Copy Maven's local copy when it matches the pin."""
    local = maven_repo_jar(version)
    if not local.is_file() or sha1_of(local) != expected:
        return False
    tmp = jar.with_suffix(".part")
    shutil.copyfile(local, tmp)
    tmp.replace(jar)
    return True


def _download(url: str, jar: Path, expected: str, timeout_s: float) -> None:
    tmp = jar.with_suffix(".part")
    h = hashlib.sha1()
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as r, tmp.open("wb") as f:
            if r.status_code != 200:
                raise JarError(
                    f"{url} answered HTTP {r.status_code}: is questdb.version right "
                    "(TICKARCHIVE_QUESTDB__VERSION) and questdb.maven_repo_url reachable?"
                )
            for chunk in r.iter_bytes(CHUNK_BYTES):
                h.update(chunk)
                f.write(chunk)
    except httpx.HTTPError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise JarError(
            f"cannot download the QuestDB jar from {url} ({type(exc).__name__}: {exc}); "
            "set questdb.maven_repo_url (TICKARCHIVE_QUESTDB__MAVEN_REPO_URL) to a reachable mirror, "
            f"or put the jar at {jar}"
        ) from None
    except JarError:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    actual = h.hexdigest()
    if actual != expected:
        tmp.unlink()
        raise JarError(
            f"{GROUP}:{ARTIFACT} downloaded from {url} has SHA-1 {actual}, but questdb.jar_sha1 "
            f"(TICKARCHIVE_QUESTDB__JAR_SHA1) expects {expected}: fix the pin, or the mirror"
        )
    tmp.replace(jar)


def ensure_jar(
    cache_dir: Path, version: str, expected_sha1: str, repo_url: str = MAVEN_CENTRAL, timeout_s: float = 600.0
) -> Path:
    """The path of a jar whose SHA-1 is ``expected_sha1``, fetching it if needed (see the
    module docstring). Raises ``JarError``."""
    jar = jar_path(cache_dir, version)
    expected = expected_sha1.lower()
    if jar.is_file() and sha1_of(jar) == expected:
        return jar
    cache_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        jar.unlink()
    if not _copy_from_maven_repo(version, jar, expected):
        _download(jar_url(repo_url, version), jar, expected, timeout_s)
    return jar
