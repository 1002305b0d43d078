"""GraphiQL that works with no internet: the page strawberry serves on GET /graphql loads its
scripts from a CDN, so offline it shows only "Loading...". We serve the same page with every
asset vendored in the package (api/static/graphiql/, provenance in its README.md) at
``/graphiql-assets/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
ASSETS_PATH = "/graphiql-assets"


@cache
def graphiql_page() -> str:
    return (STATIC_DIR / "graphiql.html").read_text(encoding="utf-8")


def mount_graphiql_assets(app: FastAPI) -> None:
    """The vendored assets the page loads."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="graphiql-assets")


def serve_graphiql_offline(router: Any) -> None:
    """Make ``router`` (strawberry's GraphQLRouter) answer a browser's GET with our page
    instead of strawberry's CDN one (the assets: :func:`mount_graphiql_assets`)."""
    async def render_graphql_ide(_request: Any) -> HTMLResponse:
        return HTMLResponse(graphiql_page())

    # strawberry calls self.render_graphql_ide(request) only when it would show its IDE (a
    # browser's GET without a query), so GET queries and everything else stay strawberry's.
    router.render_graphql_ide = render_graphql_ide
