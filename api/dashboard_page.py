"""The dashboard at ``/``: the page built from api/dashboard/ (see api/dashboard_build.py)
and its assets at ``/dashboard/``. It is a front end like any other: everything it shows it
asks the public GraphQL API (/graphql, and its websocket), plus /health for the lights."""

from __future__ import annotations

from functools import cache

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.dashboard_build import BUILD_DIR

ASSETS_PATH = "/dashboard"
HEADERS = {
    "Cache-Control": "no-cache",  # the page names hashed assets: those may be cached
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Scripts only from us; charts set inline styles; the websocket is on our own address.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; connect-src 'self' ws: wss:; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
MISSING = ("<!doctype html><title>Tradetape</title><p>The dashboard is not built: run "
           "<code>scripts/build_dashboard</code>. The API is at <a href=\"/graphql\">/graphql"
           "</a>.</p>")


@cache
def dashboard_page() -> str | None:
    index = BUILD_DIR / "index.html"
    return index.read_text(encoding="utf-8") if index.is_file() else None


def serve_dashboard(app: FastAPI) -> None:
    if (BUILD_DIR / "assets").is_dir():
        app.mount(f"{ASSETS_PATH}/assets", StaticFiles(directory=BUILD_DIR / "assets"),
                  name="dashboard-assets")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        page = dashboard_page()
        if page is None:
            return HTMLResponse(MISSING, status_code=503, headers=HEADERS)
        return HTMLResponse(page, headers=HEADERS)
