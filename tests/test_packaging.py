"""The distribution installs one import name, ``tickarchive``: the repository's top-level
folders (ingest/, store/, ...) are its subpackages (docs/architecture.md, "One namespace")."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    # built from a copy: setuptools writes build/ and *.egg-info into the tree it builds
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", ".venv", ".local", "target", "node_modules", "build", "*.egg-info",
                                    "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis")
    shutil.copytree(ROOT, src, symlinks=True, ignore=ignore)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)],
        check=True, cwd=tmp_path, capture_output=True, timeout=300,
    )
    (wheel,) = out.glob("tickarchive-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert z.read(top_level).decode().split() == ["tickarchive"]
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"tickarchive"}
    for sub in ("ingest", "store", "archive", "api", "loadtest", "venues"):  # the folders, as subpackages
        assert f"tickarchive/{sub}/__init__.py" in names
    assert "tickarchive/store/sql/questdb/V001__tables.sql" in names  # package data follows
    assert "tickarchive/store/pglite/serve.mjs" in names
