"""REST pages of the tickarchive API as polars DataFrames or typed rows.

``Client(url, api_key)`` wraps one keep-alive ``httpx`` client. ``pages(path, **params)``
yields every page of a paged endpoint as a DataFrame (Parquet on the wire: times are
``Datetime("us", "UTC")``) following ``X-Next-Cursor``; ``frame`` concatenates them;
``rows`` yields typed rows (``tickarchive.client.rows``) from JSON pages. A 429 or 503
with ``Retry-After`` is retried after that long, ``retries`` times; every other error
raises ``ApiError`` with the API's code and detail.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import polars as pl

from tickarchive.client.errors import ApiError, Unreachable
from tickarchive.client.rows import ROW_TYPES

DEFAULT_URL = "http://127.0.0.1:18000"


def _param(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


class Client:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
        http: httpx.Client | None = None,
    ) -> None:
        """``http``: an ``httpx.Client`` to send through instead of a new one (its base URL
        and transport; e.g. an in-process ASGI app)."""
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.retries = retries
        headers = {"X-API-Key": api_key} if api_key else {}
        if http is not None:
            http.headers.update(headers)
            self.url = str(http.base_url).rstrip("/")
        self._owned = http is None
        self._http = http or httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    # -- plumbing ----------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> httpx.Response:
        """One GET, retried on 429/503 with ``Retry-After``; ``ApiError`` on an error answer."""
        query = {k: _param(v) for k, v in params.items() if v is not None}
        for attempt in range(self.retries + 1):
            try:
                r = self._http.get(path, params=query)
            except httpx.HTTPError as exc:
                raise Unreachable(f"{self.url}{path}: {type(exc).__name__}: {exc}") from exc
            if r.status_code < 400:
                return r
            retry = r.headers.get("Retry-After")
            if r.status_code in (429, 503) and retry is not None and attempt < self.retries:
                time.sleep(float(retry))
                continue
            raise _error(r)
        raise AssertionError("unreachable")

    def json(self, path: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.get(path, **params).json()
        return body

    # -- pages -------------------------------------------------------------------------
    def pages(self, path: str, **params: Any) -> Iterator[pl.DataFrame]:
        """Every page of ``path`` as a DataFrame (Parquet), in order."""
        cursor: str | None = None
        while True:
            r = self.get(path, **params, format="parquet", cursor=cursor)
            yield pl.read_parquet(io.BytesIO(r.content))
            cursor = r.headers.get("X-Next-Cursor")
            if not cursor:
                return

    def frame(self, path: str, **params: Any) -> pl.DataFrame:
        """All pages of ``path`` in one DataFrame."""
        return pl.concat(list(self.pages(path, **params)), how="vertical")

    def rows(self, path: str, **params: Any) -> Iterator[Any]:
        """Every row of ``path`` as a typed row (``quotes`` → ``Quote``, ...)."""
        kind = ROW_TYPES[path.strip("/")]
        cursor: str | None = None
        while True:
            body = self.json(path, **params, format="json", time_format="epoch_us", cursor=cursor)
            for row in body["rows"]:
                yield kind(**row)
            cursor = body.get("next_cursor")
            if not cursor:
                return

    # -- endpoints -----------------------------------------------------------------------
    def quotes(self, instrument: str, start: Any, end: Any, **params: Any) -> pl.DataFrame:
        return self.frame("/quotes", instrument=instrument, start=start, end=end, **params)

    def trades(self, instrument: str, start: Any, end: Any, **params: Any) -> pl.DataFrame:
        return self.frame("/trades", instrument=instrument, start=start, end=end, **params)

    def gaps(self, **params: Any) -> pl.DataFrame:
        return self.frame("/gaps", **params)

    def chain(self, currency: str, at: Any, **params: Any) -> pl.DataFrame:
        return self.frame("/chain", currency=currency, at=at, **params)

    def instruments(self, **params: Any) -> pl.DataFrame:
        return self.frame("/instruments", **params)

    def ohlcv(self, instrument: str, start: Any, end: Any, interval: str = "1m") -> pl.DataFrame:
        r = self.get("/ohlcv", instrument=instrument, start=start, end=end, interval=interval, format="parquet")
        return pl.read_parquet(io.BytesIO(r.content))

    def coverage(self, start_day: Any, end_day: Any, **params: Any) -> pl.DataFrame:
        r = self.get("/coverage", start_day=start_day, end_day=end_day, format="parquet", **params)
        return pl.read_parquet(io.BytesIO(r.content))

    def book(self, instrument: str, at: Any, depth: int = 10) -> dict[str, Any]:
        return self.json("/book", instrument=instrument, at=at, depth=depth, time_format="epoch_us")

    # -- products (docs/api.md, "Products"): one answer each, no pages -----------------------
    def parquet(self, path: str, **params: Any) -> pl.DataFrame:
        """One (unpaged) answer of ``path`` as a DataFrame (Parquet on the wire)."""
        r = self.get(path, **params, format="parquet")
        return pl.read_parquet(io.BytesIO(r.content))

    def chain_snapshots(
        self, currency: str, start: Any = None, end: Any = None, *, at: Any = None, interval: str = "1m",
        **params: Any,
    ) -> pl.DataFrame:
        """The chain at fixed instants (``/chain/snapshots``): one row per instant and option;
        ``at`` instead of ``start``/``end`` for one instant. ``max_age_s``, ``basis``,
        ``columns`` as keywords."""
        if at is not None:
            return self.parquet("/chain/snapshots", currency=currency, at=at, **params)
        return self.parquet("/chain/snapshots", currency=currency, start=start, end=end, interval=interval, **params)

    def surface(
        self, currency: str, start: Any = None, end: Any = None, *, at: Any = None, interval: str = "1h",
        level: str = "expiries", **params: Any,
    ) -> pl.DataFrame:
        """IV surfaces (``/surface``): per expiry (``level="expiries"``) or the points."""
        if at is not None:
            return self.parquet("/surface", currency=currency, at=at, level=level, **params)
        return self.parquet("/surface", currency=currency, start=start, end=end, interval=interval, level=level,
                            **params)

    def book_snapshots(
        self, instrument: str, start: Any, end: Any, *, interval: str = "100ms", depth: int = 25, **params: Any
    ) -> pl.DataFrame:
        """Top-``depth`` book of one instrument every ``interval`` (``/book/snapshots``);
        ``only_changed``, ``lookback_s`` as keywords."""
        return self.parquet("/book/snapshots", instrument=instrument, start=start, end=end, interval=interval,
                            depth=depth, **params)

    def book_snapshots_tardis(
        self, instrument: str, start: Any, end: Any, *, interval: str = "100ms", depth: int = 25, **params: Any
    ) -> bytes:
        """The same as Tardis ``book_snapshot_N`` CSV bytes."""
        return self.get("/book/snapshots", instrument=instrument, start=start, end=end, interval=interval,
                        depth=depth, format="tardis", **params).content

    def options_chain(self, currency: str, start: Any, end: Any) -> bytes:
        """Tardis-compatible ``options_chain`` CSV bytes of every quote of ``currency``'s
        options in [start, end) (at most one day): ``pl.read_csv(...)`` reads it."""
        return self.get("/options_chain", currency=currency, start=start, end=end).content

    def condition(self, start: Any, end: Any, table: str | None = None) -> pl.DataFrame:
        """Per day and table: available, degraded, missing or pending (``/condition``)."""
        return self.parquet("/condition", start=start, end=end, table=table)

    def health(self) -> dict[str, Any]:
        r = self._http.get("/health")
        body: dict[str, Any] = r.json()
        return body


def _error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
        code, detail = str(body.get("error", "http_error")), str(body.get("detail", r.text[:200]))
    except ValueError:
        code, detail = "http_error", r.text[:200]
    retry = r.headers.get("Retry-After")
    return ApiError(r.status_code, code, detail, float(retry) if retry is not None else None)
