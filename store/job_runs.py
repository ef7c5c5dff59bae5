"""The outcome of each lifecycle job run, in the warm store's ``job_runs`` (thin I/O).

``with recorded(writer_dsn, "archive_export"):`` around a job writes one row when the
block ends: ``ok``, or ``failed`` with the exception's text (a ``SystemExit`` or click
exit with status 0 counts as ok). The API counts failed archive runs as
``tickarchive_archive_failures_total``, so the archive-failed alert fires from a real
failure. Recording never hides the job's own outcome: if the warm store cannot take the
row, a warning is logged and the job's exception (if any) propagates unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

log = logging.getLogger(__name__)

MAX_DETAIL = 2000


def record(dsn: str, job: str, started_at: dt.datetime, ok: bool, detail: str = "") -> bool:
    """Insert one ``job_runs`` row; False (logged) when the warm store refused it."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5, prepare_threshold=None) as conn:
            conn.execute(
                "INSERT INTO job_runs (job, started_at, status, detail) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (job, started_at) DO NOTHING",
                (job, started_at, "ok" if ok else "failed", detail[:MAX_DETAIL]),
            )
    except psycopg.Error as exc:
        log.warning("job_runs: could not record %s (%s): %s", job, "ok" if ok else "failed", exc)
        return False
    return True


def _exit_ok(exc: BaseException) -> bool:
    code = getattr(exc, "exit_code", getattr(exc, "code", 1))
    return code in (0, None)


@contextmanager
def recorded(dsn: str, job: str) -> Iterator[None]:
    started = dt.datetime.now(dt.UTC)
    try:
        yield
    except BaseException as exc:
        ok = _exit_ok(exc) if type(exc).__name__ in ("Exit", "SystemExit") else False
        record(dsn, job, started, ok, "" if ok else f"{type(exc).__name__}: {exc}")
        raise
    record(dsn, job, started, True)
