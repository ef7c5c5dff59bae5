"""The FastAPI application: ``create_app(settings)``.

Every error leaves as JSON ``{"error": code, "detail": message}``: ``ApiError`` with its
own status, request validation as 422 naming the parameter, anything unexpected as 500
with a request id (the traceback goes to the server log, never to the client).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickarchive.api import routes_data, routes_ops, routes_products
from tickarchive.api.auth import KeyGuard
from tickarchive.api.context import AppContext
from tickarchive.api.errors import ApiError, RateLimited
from tickarchive.api.metrics import ApiMetrics
from tickarchive.api.output import JsonResponse
from tickarchive.api.stores import Stores
from tickarchive.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Query and health API over the three tiers of tickarchive (QuestDB hot,
TimescaleDB/PostgreSQL warm, Parquet cold). See docs/api.md."""


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    msgs = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        where = f"{loc[0]} parameter {loc[-1]!r}" if len(loc) >= 2 else ".".join(loc)
        msgs.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(msgs) or "invalid request"


def create_app(settings: Settings, stores: Stores | None = None) -> FastAPI:
    own = stores is None
    st = stores if stores is not None else Stores(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own:
            st.close()

    app = FastAPI(
        title="tickarchive",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JsonResponse,
    )
    metrics = ApiMetrics(st)
    app.state.ctx = AppContext(
        settings=settings,
        stores=st,
        guard=KeyGuard(settings.api.api_keys_sha256, settings.api.rate_limit_per_min, settings.api.rate_limit_burst),
        metrics=metrics,
    )
    app.include_router(routes_ops.router)
    app.include_router(routes_data.router)
    app.include_router(routes_products.router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
        return _error(exc.status, exc.code, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        rid = uuid.uuid4().hex[:12]
        log.error("request %s %s failed (id %s)", request.method, request.url.path, rid, exc_info=exc)
        return _error(500, "internal", f"internal error (request id {rid}); the details are in the server log")

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            endpoint = getattr(route, "path", "other")
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.seconds.labels(endpoint).observe(time.perf_counter() - t0)

    return app
