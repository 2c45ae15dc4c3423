"""The dashboard at / and the API docs at /docs, every asset served from installed packages (works offline).

The dashboard is plain HTML/CSS/JS in server/dashboard/ (the data of package ``evostim.server.dashboard``); Swagger
UI's files come from the ``fastapi-offline`` package (its ``static`` folder), so /docs fetches nothing from a CDN.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from evostim.server.sessions.errors import NotFound

__all__ = ["DOCS_ASSETS", "router"]

router = APIRouter(include_in_schema=False)

_DASHBOARD = resources.files("evostim.server").joinpath("dashboard")
_MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# Every page file in the folder (its modules, styles, icon): only these names are served.
_DASHBOARD_FILES = frozenset(f.name for f in _DASHBOARD.iterdir() if Path(f.name).suffix in _MEDIA)
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_DOCS_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})
_NO_STORE = {"Cache-Control": "no-cache"}  # small files; a new version shows on reload


def _dashboard_file(name: str) -> Response:
    if name not in _DASHBOARD_FILES:
        raise NotFound(f"no dashboard asset {name!r}")
    data = _DASHBOARD.joinpath(name).read_bytes()
    return Response(data, media_type=_MEDIA[Path(name).suffix], headers=_NO_STORE)


@router.get("/")
def dashboard() -> Response:
    """The dashboard: sessions, score curves, best images, live by server-sent events."""
    return _dashboard_file("index.html")


@router.get("/dashboard/{name}")
def dashboard_asset(name: str) -> Response:
    return _dashboard_file(name)


@router.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for by this name (the pages name it as /dashboard/favicon.svg)."""
    return _dashboard_file("favicon.svg")


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs-assets/favicon.png",
    )


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> FileResponse:
    if name not in _DOCS_FILES:
        raise NotFound(f"no docs asset {name!r}")
    media = _MEDIA.get(Path(name).suffix, "application/octet-stream")
    return FileResponse(DOCS_ASSETS / name, media_type=media, headers={"Cache-Control": "public, max-age=86400"})
