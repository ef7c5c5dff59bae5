"""The FastAPI application: ``create_app(settings)``.

Every error leaves as JSON ``{"error": code, "detail": message, "request_id": id}``:
``ApiError`` with its own status (and ``Retry-After`` where it applies), request
validation as 422 naming the parameter, an unknown route as 404 ``not_found``, anything
unexpected as 500. A store failure is logged with its request id and answered with a
stable message (never a path, SQL or a foreign error's text). Every response carries
``X-Request-Id``.

At most ``api.max_concurrent_requests`` REST requests are served at once; more are
answered 503 ``saturated`` with ``Retry-After`` at once (``/health``, ``/metrics`` and the
docs are not counted).

Background work runs in the app's lifespan, as tasks it owns and cancels at shutdown:
the store-derived ``/metrics`` figures (``api.metrics_refresh_s``), the API-key cache
(``api.keys_refresh_s``), the usage flush (``api.usage_flush_s``) and the live stream
hub (``api.stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickarchive.api import docs, routes_data, routes_ops, routes_products, stream
from tickarchive.api.auth import KeyGuard
from tickarchive.api.context import AppContext
from tickarchive.api.errors import ApiError, Saturated, StoreUnavailable
from tickarchive.api.keys import KeyStore
from tickarchive.api.metrics import ApiMetrics
from tickarchive.api.output import JsonResponse
from tickarchive.api.schemas import ERROR_RESPONSES, NAME_PATTERN
from tickarchive.api.stores import Stores
from tickarchive.api.usage import UsageMeter
from tickarchive.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Query, streaming and health API over the three tiers of tickarchive (QuestDB hot,
TimescaleDB/PostgreSQL warm, Parquet cold). Live and replay streams: WebSocket `/stream`.
See docs/api.md."""

UNCOUNTED = ("/health", "/metrics", *docs.PATHS)
"""Paths outside the concurrency limit."""

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _error(
    status: int, code: str, detail: str, request_id: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": code, "detail": detail, "request_id": request_id}, status_code=status, headers=headers
    )


def _rid(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else uuid.uuid4().hex[:12]


PATTERN_HINTS = {
    "instrument": "is not an instrument name (e.g. ETH-27DEC24-4000-C: upper-case letters, digits and '_', "
    "parts joined by '-') or pattern (ETH-27DEC24-*)",
    "start": "is not a time; use ISO-8601 (2026-10-01T12:00:00Z) or epoch seconds/milliseconds/microseconds",
    "start_day": "is not a date (YYYY-MM-DD)",
    "currency": "is not a currency code (e.g. ETH, BTC)",
    "interval": "is not an interval like 1m, 5m, 1h or 1d",
    "columns": "is not a comma-separated list of this table's column names",
    "cursor": "is not a cursor this API returned for this query",
}
PATTERN_HINTS.update(end=PATTERN_HINTS["start"], at=PATTERN_HINTS["start"], end_day=PATTERN_HINTS["start_day"],
                     expiry=PATTERN_HINTS["start_day"])


def _validation_detail(exc: RequestValidationError) -> str:
    msgs = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        where = f"{loc[0]} parameter {loc[-1]!r}" if len(loc) >= 2 else ".".join(loc)
        hint = PATTERN_HINTS.get(loc[-1]) if loc and err.get("type") == "string_pattern_mismatch" else None
        if hint is not None and (err.get("ctx") or {}).get("pattern") == NAME_PATTERN:
            hint = "is not an instrument name: this endpoint takes one name (ETH-27DEC24-4000-C), not a pattern"
        if hint is not None:
            msgs.append(f"{where}: {str(err.get('input'))[:64]!r} {hint}")
        else:
            msgs.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(msgs) or "invalid request"


async def _every(seconds: float, what: str, fn: Callable[[], object]) -> None:
    """Run the blocking ``fn`` off the event loop every ``seconds`` (first run at once)."""
    while True:
        try:
            await asyncio.to_thread(fn)
        except ApiError as exc:
            log.warning("%s failed: %s", what, exc.detail)
        await asyncio.sleep(seconds)


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """The document states this server's own limits: ``limit`` at most ``api.max_rows``."""
    plain = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = plain()
            for item in schema.get("paths", {}).values():
                for op in item.values():
                    for param in op.get("parameters", []) if isinstance(op, dict) else []:
                        if param.get("name") == "limit":
                            target = param["schema"]
                            for alt in target.get("anyOf", [target]):
                                if alt.get("type") == "integer":
                                    alt["maximum"] = settings.api.max_rows
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options the API is served with (``tickarchive api`` and the tests alike).

    WebSocket permessage-deflate is off unless ``stream.per_message_deflate``: it compresses
    every message once per client, which undoes the hub's one encoding per subscription
    (with 100 live clients it was 80% of the event loop; docs/api.md, "Streaming")."""
    return {
        "ws": "websockets-sansio",
        "ws_per_message_deflate": settings.stream.per_message_deflate,
        "timeout_graceful_shutdown": 5,
    }


def create_app(settings: Settings, stores: Stores | None = None, *, live: bool = True) -> FastAPI:
    """The app over ``stores`` (built from ``settings`` and closed at shutdown when not
    given); ``live``: read the collector's publisher for live streams."""
    own = stores is None
    st = stores if stores is not None else Stores(settings)
    a = settings.api
    metrics = ApiMetrics(st)
    keys = KeyStore(st.warm_pool, a.keys_refresh_s)
    usage = UsageMeter(st.warm_pool)

    def on_limited(reason: str, plan: str) -> None:
        metrics.limited.labels(reason, plan).inc()

    guard = KeyGuard(a, keys, usage, on_limited)
    hub = stream.StreamHub(settings, metrics) if live else None
    ctx = AppContext(
        settings=settings,
        stores=st,
        guard=guard,
        keys=keys,
        usage=usage,
        metrics=metrics,
        cursor_secret=a.cursor_secret.encode() if a.cursor_secret else secrets.token_bytes(32),
        hub=hub,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys.refresh_if_due()
        if guard.open:
            log.warning(
                "API: no API keys are configured: open to loopback clients only, without limits "
                "(add one with `tickarchive keys add --plan NAME`)"
            )
        else:
            log.info("API: %d active API keys; plans %s", keys.active_keys, ", ".join(sorted(a.plans)))
        if metrics.gauges is not None:  # the failure counters exist from the first scrape
            await asyncio.to_thread(metrics.gauges.refresh_counters)
        tasks: list[asyncio.Task[None]] = []
        if metrics.gauges is not None:
            tasks.append(asyncio.create_task(_every(a.metrics_refresh_s, "metrics refresh", metrics.gauges.refresh)))
        tasks.append(asyncio.create_task(_every(a.keys_refresh_s, "API-key refresh", keys.refresh_if_due)))
        tasks.append(asyncio.create_task(_every(a.usage_flush_s, "usage flush", usage.flush)))
        if hub is not None:
            tasks.append(asyncio.create_task(hub.run(), name="stream-hub"))
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await asyncio.to_thread(usage.flush)
            if own:
                st.close()

    app = FastAPI(
        title="tickarchive",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JsonResponse,
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.ctx = ctx
    docs.add_offline_docs(app)
    _document_limits(app, settings)
    app.include_router(routes_ops.router)
    app.include_router(routes_data.router)
    app.include_router(routes_products.router)
    app.include_router(stream.router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        rid = _rid(request)
        if isinstance(exc, StoreUnavailable):
            log.warning("request %s %s: %s (id %s)", request.method, request.url.path, exc.internal, rid)
        if isinstance(exc, Saturated):
            metrics.saturated.inc()
        return _error(exc.status, exc.code, exc.detail, rid, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", _validation_detail(exc), _rid(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no such endpoint: {request.url.path[:100]} (see /docs)"
        return _error(exc.status_code, code, detail, _rid(request), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        rid = _rid(request)
        log.error("request %s %s failed (id %s)", request.method, request.url.path, rid, exc_info=exc)
        return _error(500, "internal", f"internal error (request id {rid}); the details are in the server log", rid)

    inflight = 0
    limit = a.max_concurrent_requests

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        nonlocal inflight
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:12]
        request.state.request_id = rid
        status = 500
        counted = not request.url.path.startswith(UNCOUNTED)
        try:
            if counted and inflight >= limit:
                metrics.saturated.inc()
                response: Response = _error(
                    503, "saturated", f"{limit} requests in progress (api.max_concurrent_requests); retry shortly",
                    rid, {"Retry-After": "1"},
                )
            else:
                if counted:
                    inflight += 1
                try:
                    response = await call_next(request)
                finally:
                    if counted:
                        inflight -= 1
            status = response.status_code
            response.headers["X-Request-Id"] = rid
            return response
        finally:
            route = request.scope.get("route")
            endpoint = getattr(route, "path", "other")
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.seconds.labels(endpoint).observe(time.perf_counter() - t0)

    return app
