"""A small bounded pool of psycopg connections, one per store (QuestDB PG wire, warm store).

At most ``size`` connections exist; a request waits up to ``timeout_s`` for one. A
connection that failed with an operational error is discarded, not returned. psycopg
errors become ``StoreUnavailable`` here (the message names the store, never the SQL).
Connections are autocommit and, on PostgreSQL, read-only with a statement timeout.
Automatic prepared statements are off (PGlite shares one backend between connections).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from api.errors import StoreUnavailable

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


class Pool:
    def __init__(self, name: str, dsn: str, *, size: int, timeout_s: float, setup: Sequence[str] = ()) -> None:
        self.name = name
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._setup = tuple(setup)
        self._idle: queue.LifoQueue[psycopg.Connection[Row]] = queue.LifoQueue(maxsize=size)
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def _open(self) -> psycopg.Connection[Row]:
        conn = psycopg.connect(self._dsn, autocommit=True, prepare_threshold=None, connect_timeout=5)
        for stmt in self._setup:
            conn.execute(stmt)
        return conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Row]]:
        if not self._slots.acquire(timeout=self._timeout_s):
            raise StoreUnavailable(f"{self.name}: all connections busy for {self._timeout_s:g} s")
        conn: psycopg.Connection[Row] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            yield conn
        except psycopg.Error as exc:
            log.warning("%s query failed: %s", self.name, exc)
            if conn is not None:
                conn.close()
                conn = None
            raise StoreUnavailable(f"{self.name} query failed ({type(exc).__name__})") from exc
        finally:
            if conn is not None:
                if conn.closed or self._closed:
                    conn.close()
                else:
                    try:
                        self._idle.put_nowait(conn)
                    except queue.Full:
                        conn.close()
            self._slots.release()

    def fetch(self, sql: Any, params: Sequence[Any] | None = None, *, binary: bool = False) -> list[Row]:
        """Rows of one statement; ``binary`` asks for binary results (much faster to decode
        for numeric columns: used for bulk row reads)."""
        with self.connection() as conn:
            cur = conn.cursor(binary=binary).execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def copy_out(self, sql: Any, params: Sequence[Any] | None = None) -> bytes:
        """The whole output of ``COPY (...) TO STDOUT``; psycopg binds ``params`` client-side
        (quoted and escaped by the driver: COPY takes no server-side parameters)."""
        with self.connection() as conn, conn.cursor() as cur, cur.copy(sql, params) as copy:
            return b"".join([bytes(chunk) for chunk in copy])

    def close(self) -> None:
        self._closed = True
        self.drain()

    def drain(self) -> None:
        """Close the idle connections (new ones are opened on demand)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
