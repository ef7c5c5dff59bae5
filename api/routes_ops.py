"""Operational endpoints: /health and /metrics (open, no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tickarchive.api import health as healthmod
from tickarchive.api.context import Ctx
from tickarchive.api.output import JsonResponse

router = APIRouter()


@router.get("/health", summary="200 when QuestDB, the warm store and every collector connection are fresh; else 503")
def health(ctx: Ctx) -> JsonResponse:
    rep = healthmod.check(ctx.stores)
    return JsonResponse(rep.body(), status_code=200 if rep.healthy else 503)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)")
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
