"""The data endpoints, one router: /quotes, /trades, /gaps (``api.routes_rows``), /chain,
/book, /ohlcv (``api.routes_market``), /instruments, /coverage (``api.routes_meta``).

Every data route runs ``known_parameters_only`` (a query parameter the route does not
take is a 422, never silently ignored) and ``authorize`` (the caller and its plan).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tickarchive.api import routes_market, routes_meta, routes_rows
from tickarchive.api.context import known_parameters_only
from tickarchive.api.routes_meta import fold_instruments

__all__ = ["fold_instruments", "router"]

router = APIRouter(dependencies=[Depends(known_parameters_only)])
router.include_router(routes_rows.router)
router.include_router(routes_market.router)
router.include_router(routes_meta.router)
