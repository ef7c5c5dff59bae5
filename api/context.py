"""What every request handler needs: settings, stores, the key guard, usage and metrics;
and the dependencies every data route runs (known parameters only, the caller)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request

from tickarchive.api.auth import Caller, KeyGuard, presented_key
from tickarchive.api.errors import InvalidRequest
from tickarchive.api.keys import KeyStore
from tickarchive.api.metrics import ApiMetrics
from tickarchive.api.stores import Stores
from tickarchive.api.usage import UsageMeter
from tickarchive.settings import Settings

if TYPE_CHECKING:
    from tickarchive.api.stream import StreamHub


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    stores: Stores
    guard: KeyGuard
    keys: KeyStore
    usage: UsageMeter
    metrics: ApiMetrics
    cursor_secret: bytes
    hub: StreamHub | None = None


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def client_address(request: Any) -> str | None:
    client = request.client
    return client.host if client is not None else None


def authorize(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    x_api_key: Annotated[str | None, Header(description="API key (when keys are configured)", max_length=200)] = None,
    authorization: Annotated[
        str | None, Header(description="alternatively: Bearer <API key>", max_length=220)
    ] = None,
) -> Caller:
    caller = ctx.guard.check(presented_key(x_api_key, authorization), client_address(request))
    if caller.key_id is not None:
        ctx.metrics.key_requests.labels(caller.key_id, caller.plan_name or "").inc()
    request.state.caller = caller
    return caller


def known_parameters_only(request: Request) -> None:
    """422 for a query parameter the route does not take (a misspelt ``limt`` would
    otherwise be ignored silently)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {p.alias for p in _all_query_params(dependant)}
    unknown = sorted(k for k in request.query_params if k not in known)
    if unknown:
        names = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise InvalidRequest(
            f"unknown query parameter(s) {names}; this endpoint takes {', '.join(sorted(known)) or 'none'}"
        )


def _all_query_params(dependant: Any) -> list[Any]:
    out = list(dependant.query_params)
    for sub in dependant.dependencies:
        out.extend(_all_query_params(sub))
    return out


Ctx = Annotated[AppContext, Depends(context)]
CallerDep = Annotated[Caller, Depends(authorize)]
