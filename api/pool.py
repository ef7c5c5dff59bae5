"""A small bounded pool of psycopg connections, one per store (QuestDB PG wire, warm store).

At most ``size`` connections exist; a request waits up to ``wait_s`` for one and is then
told to come back (``Saturated``: 503 with ``Retry-After``). A connection that failed with
an operational error is discarded, not returned. psycopg errors become
``StoreUnavailable`` here (a stable message naming the store; the foreign text is only
logged). Connections are autocommit and, on PostgreSQL, read-only with a statement timeout.
Automatic prepared statements are off (PGlite shares one backend between connections).

Every statement also runs under a client-side deadline (``deadline_s``): QuestDB ignores
``SET statement_timeout`` over the PG wire, so when the deadline passes the watchdog
sends a cancel request and, if the statement still has not returned a second later, shuts
the socket down (the blocked call then fails and QuestDB sees its client gone). Either
way the caller gets ``StoreTimeout`` (503 with ``Retry-After``) and the connection is
discarded.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg

from tickarchive.api.errors import Saturated, StoreTimeout, StoreUnavailable

log = logging.getLogger(__name__)

Row = tuple[Any, ...]

CANCEL_GRACE_S = 1.0
"""After a cancel request, how long the watchdog waits before cutting the socket."""


class _Watchdog:
    """Cancels the statement running on ``conn`` once ``seconds`` have passed."""

    def __init__(self, conn: psycopg.Connection[Row], seconds: float) -> None:
        self.conn = conn
        self.fired = False
        self._done = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._timer.cancel()

    def _fire(self) -> None:
        if self._done.is_set():
            return
        self.fired = True
        try:
            self.conn.cancel_safe(timeout=CANCEL_GRACE_S)
        except (psycopg.Error, OSError) as exc:
            log.debug("cancel request failed: %s", exc)
        if self._done.wait(CANCEL_GRACE_S):
            return
        try:
            fd = os.dup(self.conn.fileno())
        except (psycopg.Error, OSError):
            return
        try:
            with socket.socket(fileno=fd) as s:
                s.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("socket shutdown failed: %s", exc)


class Pool:
    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        size: int,
        wait_s: float,
        deadline_s: float,
        setup: Sequence[str] = (),
    ) -> None:
        self.name = name
        self._dsn = dsn
        self._wait_s = wait_s
        self._deadline_s = deadline_s
        self._setup = tuple(setup)
        self._idle: queue.LifoQueue[psycopg.Connection[Row]] = queue.LifoQueue(maxsize=size)
        self._slots = threading.BoundedSemaphore(size)
        self._size = size
        self._closed = False
        self._pool_executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def _open(self) -> psycopg.Connection[Row]:
        conn = psycopg.connect(self._dsn, autocommit=True, prepare_threshold=None, connect_timeout=5)
        for stmt in self._setup:
            conn.execute(stmt)
        return conn

    def _retry_after_s(self) -> int:
        return max(1, round(self._wait_s))

    @contextmanager
    def connection(self, *, slot_held: bool = False) -> Iterator[psycopg.Connection[Row]]:
        """A connection for the block (``slot_held``: the caller already acquired a slot,
        which is released at the end as usual)."""
        if not slot_held and not self._slots.acquire(timeout=self._wait_s):
            raise Saturated(f"{self.name}: all connections busy; retry shortly", self._retry_after_s())
        conn: psycopg.Connection[Row] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            yield conn
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
                conn = None
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise StoreTimeout(f"{self.name}: the query took too long") from exc
            raise StoreUnavailable(f"{self.name} is unavailable", f"{self.name}: {exc!r}") from exc
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

    def _run(self, conn: psycopg.Connection[Row], sql: Any, params: Sequence[Any] | None, binary: bool) -> list[Row]:
        with _Watchdog(conn, self._deadline_s) as dog:
            try:
                cur = conn.cursor(binary=binary).execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                if dog.fired:
                    conn.close()
                    raise StoreTimeout(f"{self.name}: the query took too long") from exc
                raise

    def fetch(self, sql: Any, params: Sequence[Any] | None = None, *, binary: bool = False) -> list[Row]:
        """Rows of one statement; ``binary`` asks for binary results (much faster to decode
        for numeric columns: used for bulk row reads)."""
        with self.connection() as conn:
            return self._run(conn, sql, params, binary)

    def fetch_many(self, statements: Sequence[tuple[Any, Sequence[Any]]], *, binary: bool = False) -> list[list[Row]]:
        """The rows of each statement, in order. Statements after the first run at the same
        time on further connections as far as the pool has slots free right now (never
        waiting for one: a busy pool runs them one after another on this thread)."""
        if not statements:
            return []
        rest = list(statements[1:])
        concurrent = []
        while rest and self._slots.acquire(blocking=False):
            concurrent.append(rest.pop(0))

        def held(sql: Any, params: Sequence[Any]) -> list[Row]:
            with self.connection(slot_held=True) as conn:
                return self._run(conn, sql, params, binary)

        futures = [self._executor().submit(held, sql, params) for sql, params in concurrent]
        try:
            first = [self.fetch(*statements[0], binary=binary)]
            later = [self.fetch(sql, params, binary=binary) for sql, params in rest]
        finally:
            done = [f.exception() for f in futures]  # wait for every one before leaving
        failed = next((e for e in done if e is not None), None)
        if failed is not None:
            raise failed
        return [*first, *(f.result() for f in futures), *later]

    def _executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._pool_executor is None:
                self._pool_executor = ThreadPoolExecutor(self._size, thread_name_prefix=f"pool-{self.name}")
            return self._pool_executor

    def copy_out(self, sql: Any, params: Sequence[Any] | None = None) -> bytes:
        """The whole output of ``COPY (...) TO STDOUT``; psycopg binds ``params`` client-side
        (quoted and escaped by the driver: COPY takes no server-side parameters)."""
        with self.connection() as conn, _Watchdog(conn, self._deadline_s) as dog:
            try:
                with conn.cursor() as cur, cur.copy(sql, params) as copy:
                    return b"".join([bytes(chunk) for chunk in copy])
            except psycopg.Error as exc:
                if dog.fired:
                    conn.close()
                    raise StoreTimeout(f"{self.name}: the query took too long") from exc
                raise

    def close(self) -> None:
        self._closed = True
        if self._pool_executor is not None:
            self._pool_executor.shutdown(wait=True)
        self.drain()

    def drain(self) -> None:
        """Close the idle connections (new ones are opened on demand)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
