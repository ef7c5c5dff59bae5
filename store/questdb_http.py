"""The one QuestDB HTTP read client: ``GET /exp?fmt=parquet`` (thin I/O).

Reading many rows over the PG wire costs ~1-2 µs per value in Python; ``/exp`` returns a
query's result as one Parquet file that Arrow decodes in C++ (several times faster).
Two uses:

* ``frame(sql, schema)``: a result small enough for memory as a polars DataFrame with
  exactly the given columns and dtypes (the API's hot row pages);
* ``to_file(sql, path)``: a result streamed to a file, never held whole (the rollover's
  day export, ``tickarchive.store.hot``).

``/exp`` takes no bind parameters: callers build SQL only from validated values. QuestDB
9.3.4 exports a VARCHAR column whose values are all <= 9 bytes as NULLs (pinned by
``tests/store/test_rollover.py``), so callers use it only for tables and columns without
VARCHAR. An error answer, an unreachable server or an unreadable body raises
``ExportFailed``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tickarchive.store.errors import ExportFailed

MAX_ERROR_CHARS = 300
CHUNK_BYTES = 1 << 20


class QuestDBHttp:
    """A keep-alive HTTP client for one QuestDB server's ``/exp``."""

    def __init__(
        self, base_url: str, auth: tuple[str, str] | None, timeout_s: float, statement_timeout_s: float | None = None
    ) -> None:
        """``statement_timeout_s``: QuestDB aborts a query running longer (its
        ``Statement-Timeout`` request header; without it ``/exp`` has no limit)."""
        self.base_url = base_url.rstrip("/")
        headers = {} if statement_timeout_s is None else {"Statement-Timeout": str(int(statement_timeout_s * 1000))}
        self._http = httpx.Client(auth=auth, timeout=timeout_s, headers=headers)

    def frame(self, sql: str, schema: dict[str, Any]) -> pl.DataFrame:
        """The result of ``sql`` with exactly the columns and dtypes of ``schema``; doubles
        that QuestDB exported as NaN become null (the PG wire reports them as NULL)."""
        try:
            r = self._http.get(f"{self.base_url}/exp", params={"query": sql, "fmt": "parquet"})
        except httpx.HTTPError as exc:
            raise ExportFailed(f"QuestDB /exp unreachable: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise ExportFailed(f"QuestDB /exp answered {r.status_code}: {r.text[:MAX_ERROR_CHARS]}")
        if not r.content:
            return pl.DataFrame(schema=schema)
        try:
            table = pq.read_table(io.BytesIO(r.content), columns=list(schema))
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise ExportFailed(f"QuestDB /exp returned unreadable Parquet: {exc}") from exc
        return conform(pl.from_arrow(table), schema)

    def to_file(self, sql: str, path: Path) -> None:
        """Stream the Parquet result of ``sql`` into ``path``."""
        params = {"query": sql, "fmt": "parquet"}
        try:
            with self._http.stream("GET", f"{self.base_url}/exp", params=params) as r, path.open("wb") as f:
                if r.status_code != 200:
                    r.read()
                    raise ExportFailed(f"/exp answered {r.status_code}: {r.text[:MAX_ERROR_CHARS]}")
                for chunk in r.iter_bytes(CHUNK_BYTES):
                    f.write(chunk)
        except (httpx.HTTPError, OSError) as exc:
            raise ExportFailed(f"/exp?fmt=parquet failed: {exc}") from exc

    def close(self) -> None:
        self._http.close()


def conform(frame: pl.DataFrame | pl.Series, schema: dict[str, Any]) -> pl.DataFrame:
    """``frame`` cast to ``schema`` (column order and dtypes; a ``Datetime`` column becomes
    integer µs whatever its unit), NaN doubles as null (pure)."""
    if not isinstance(frame, pl.DataFrame):
        frame = frame.to_frame()
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    exprs = []
    for name, dtype in schema.items():
        col = pl.col(name)
        if isinstance(frame.schema[name], pl.Datetime):
            col = col.dt.epoch("us")  # a TIMESTAMP column exported as such: integer µs
        col = col.cast(dtype)
        if dtype == pl.Float64:
            col = col.fill_nan(None)
        exprs.append(col.alias(name))
    return frame.select(exprs)
