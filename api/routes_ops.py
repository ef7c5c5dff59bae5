"""Operational endpoints: /health and /metrics (open, no API key; cheap to call).

``/metrics`` serves figures computed in the background (``api.metrics``); ``/health``
runs its checks at most once per ``api.health_cache_s`` (a burst of calls shares one report).
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tickarchive.api import health as healthmod
from tickarchive.api.context import Ctx, known_parameters_only
from tickarchive.api.output import JsonResponse
from tickarchive.api.schemas import Health

router = APIRouter(dependencies=[Depends(known_parameters_only)])

_health_lock = threading.Lock()
_health_cache: dict[int, tuple[float, healthmod.HealthReport]] = {}


@router.get(
    "/health",
    summary="200 when QuestDB, the warm store and every collector connection are fresh; else 503",
    response_model=None,
    responses={200: {"model": Health}, 503: {"model": Health, "description": "unhealthy (same body)"}},
)
def health(ctx: Ctx) -> JsonResponse:
    key = id(ctx)
    with _health_lock:
        hit = _health_cache.get(key)
        now = time.monotonic()
        if hit is None or now - hit[0] >= ctx.settings.api.health_cache_s:
            rep = healthmod.check(ctx.stores)
            if ctx.hub is not None:
                rep.checks["stream"] = ctx.hub.status()
            _health_cache.clear()
            _health_cache[key] = (now, rep)
        else:
            rep = hit[1]
    return JsonResponse(rep.body(), status_code=200 if rep.healthy else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_model=None,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"}},
)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
