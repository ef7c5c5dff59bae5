"""Isolating the rows QuestDB refuses, so that one bad row never blocks a table.

A table's batch is one ILP/HTTP transaction: QuestDB commits all of it or none. When it
refuses a batch because of a row (``IlpHttpError.rejects_rows``: a malformed or ill-typed
row, 400; a request too large, 413; or a write error that names a line, 500 — QuestDB
answers 500 for a designated timestamp past year 9999), ``isolate`` resends the batch in
parts, each its own transaction, until every row is either acknowledged or known bad:

* QuestDB names the failing line (``error in line N``): the rows before it are sent, the
  named row is sent alone (to confirm it), then the rows after it;
* otherwise the part is halved (bisection).

A row is set aside only when it fails *alone*. For a 400/422 that is enough (QuestDB read
the row and refused it). A 500 could also be the server failing (a full disk), so a row
refused alone with a 500 is set aside only if QuestDB acknowledged other rows meanwhile;
if nothing was acknowledged, or any answer was not about a row at all (5xx without a line,
no answer), isolation stops and the writer retries the batch later, as after any outage.
Rows already acknowledged are resent then: DEDUP keys make that harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from tickarchive.store.errors import IlpHttpError
from tickarchive.store.ilp import split_rows

MAX_REQUESTS: Final = 1024
"""Requests one isolation may make before it gives up and retries later."""


def row_level(err: IlpHttpError) -> bool:
    """The error is about the rows of the request (not the server or the network)."""
    if err.rejects_rows:
        return True
    return err.status == 500 and err.line is not None


def definitive(err: IlpHttpError) -> bool:
    """QuestDB read the row and refused it: it will never accept it."""
    return err.status in (400, 422)


@dataclass(slots=True)
class Isolated:
    acked_rows: int = 0
    """Rows acknowledged by the parts that went through."""
    bad: list[tuple[bytes, str]] = field(default_factory=list)
    """Rows QuestDB refuses alone, with its message."""
    retry: IlpHttpError | None = None
    """Set when isolation stopped: the batch is retried later (``bad`` is then empty)."""
    suspects: list[tuple[bytes, str]] = field(default_factory=list)
    """With ``retry``: rows refused alone with a 500 while nothing was acknowledged (the
    writer sets them aside after a few such rounds: a batch of only such rows)."""
    requests: int = 0


async def isolate(body: bytes, first: IlpHttpError, send: Callable[[bytes], Awaitable[None]]) -> Isolated:
    """Resend ``body`` (which failed with ``first``) in parts through ``send``; see the
    module docstring."""
    out = Isolated()
    rows = split_rows(body)
    suspects: list[tuple[bytes, str]] = []
    # a stack of (rows, the error they are known to fail with, or None: not sent yet)
    stack: list[tuple[list[bytes], IlpHttpError | None]] = [(rows, first)]
    while stack:
        part, err = stack.pop()
        if not part:
            continue
        if err is None:
            if out.requests >= MAX_REQUESTS:
                out.retry = IlpHttpError(f"isolating a refused batch took more than {MAX_REQUESTS} requests")
                out.bad.clear()
                return out
            out.requests += 1
            try:
                await send(b"".join(part))
            except IlpHttpError as exc:
                err = exc
            else:
                out.acked_rows += len(part)
                continue
        if not row_level(err):
            out.retry = err
            out.bad.clear()
            return out
        if len(part) == 1:
            (suspects if not definitive(err) else out.bad).append((part[0], str(err)))
            continue
        line = err.line
        if line is not None and 1 <= line <= len(part):
            # pushed in reverse: the rows before, then the named row alone, then the rest
            stack.append((part[line:], None))
            stack.append(([part[line - 1]], None))
            stack.append((part[: line - 1], None))
        else:
            mid = len(part) // 2
            stack.append((part[mid:], None))
            stack.append((part[:mid], None))
    if suspects and out.acked_rows == 0:
        # every row refused with a 500, none acknowledged: the server may be failing
        out.retry = IlpHttpError(suspects[0][1], 500)
        out.suspects = suspects
        return out
    out.bad.extend(suspects)
    return out
