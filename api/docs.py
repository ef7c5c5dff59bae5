"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from local files.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from
Google), so offline they are blank. The assets here come from the ``fastapi-offline``
wheel (its ``static/`` folder only: Swagger UI and ReDoc's standalone bundle), mounted at
``/docs-static``; the pages are FastAPI's own ``get_swagger_ui_html``/``get_redoc_html``
pointing at them, with a ``data:`` favicon and no Google fonts. ReDoc's footer still
asks for a logo from ``cdn.redoc.ly``; the ``Content-Security-Policy`` header allows
only this origin (plus inline scripts/styles the pages need, ``data:`` images and
fonts, and the ``blob:`` worker ReDoc searches in), so the pages make no other request.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
STATIC_URL = "/docs-static"
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
PATHS = ("/docs", "/redoc", "/openapi.json", STATIC_URL)
"""Paths that never need an API key."""


def add_offline_docs(app: FastAPI) -> None:
    """Serve the docs pages; ``app`` must be built with ``docs_url=None, redoc_url=None``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")
    redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url="data:,",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page
