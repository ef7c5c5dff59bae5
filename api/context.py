"""What every request handler needs: settings, stores, the key guard and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from tickarchive.api.auth import KeyGuard, presented_key
from tickarchive.api.metrics import ApiMetrics
from tickarchive.api.stores import Stores
from tickarchive.settings import Settings


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    stores: Stores
    guard: KeyGuard
    metrics: ApiMetrics


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def authorize(
    ctx: Annotated[AppContext, Depends(context)],
    x_api_key: Annotated[str | None, Header(description="API key (when keys are configured)")] = None,
    authorization: Annotated[str | None, Header(description="alternatively: Bearer <API key>")] = None,
) -> None:
    ctx.guard.check(presented_key(x_api_key, authorization))


Ctx = Annotated[AppContext, Depends(context)]
