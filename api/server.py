"""The HTTP server: the dashboard at /, GraphQL at /graphql (GraphiQL on GET), /health, the
pages links in mails open (/verify-email, /reset-password), and REST only where the outside
world calls us.
FastAPI is imported only by ``tradetape serve`` and the tests; the GraphQL schema after the
server answers (api/lazy_graphql.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.bearer import bearer_token
from api.graphiql import mount_graphiql_assets, serve_graphiql_offline
from api.graphql.read_side import ReadSide
from api.http_limits import RequestLimits
from api.lazy_graphql import GraphQLBuild, LazyGraphQLRoute
from application.public_health import health_seen_by, worst_status
from application.runtime import Runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True,
               limits: RequestLimits | None = None,
               cors_origins: tuple[str, ...] | None = None) -> FastAPI:
    """``manage_runtime``: start the runtime with the app and stop it (gracefully) on
    shutdown; tests that drive the runtime themselves pass False. ``limits``: what one
    GraphQL request may ask (default: from the environment, see api/http_limits.py).
    ``cors_origins``: the other origins whose pages may call the API (default: from the
    environment, see api/cors.py)."""
    from api.cors import allow_origins
    from api.cors import cors_origins as origins_from_environ

    limits = limits or RequestLimits.from_environ()
    origins = origins_from_environ() if cors_origins is None else cors_origins
    read = ReadSide(runtime)
    graphql = GraphQLBuild(lambda: _graphql_router(runtime, limits, read))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        graphql.start()  # after the runtime: /health answers meanwhile
        try:
            yield
        finally:
            read.close()
            if manage_runtime:
                runtime.stop()

    # No OpenTelemetry here: FastAPI's own would otherwise look for configured providers on
    # every request (the environment and three globals), for nothing.
    app = _Tradetape(title="Tradetape", lifespan=lifespan, docs_url=None, redoc_url=None,
                     telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.runtime = runtime

    @app.get("/health")
    def health(request: Request) -> JSONResponse:
        # anyone asks (load balancers, monitors); an administrator's token shows the
        # accounts' rows and the errors' text too (application/public_health.py)
        parts, full = health_seen_by(runtime.health, runtime.identity.authenticate,
                                     bearer_token(request.headers.get("authorization")))
        worst = worst_status(parts)
        return JSONResponse({"status": worst, **parts}, status_code=503 if worst == "red"
                            else 200, headers={  # which one it is (the dashboard asks)
                                "X-Health-View": "full" if full else "public",
                                "Vary": "Authorization", "Cache-Control": "no-store"})

    _account_pages(app, runtime)
    _stripe_webhook(app, runtime)  # before /webhooks/{id}: the literal path first
    _webhooks(app, runtime)
    _dashboard(app)
    app.router.routes.append(LazyGraphQLRoute(graphql))
    mount_graphiql_assets(app)
    app.state.graphql = graphql
    app.state.graphql_read_side = read
    door: Any = _AppStack(app)
    if runtime.settings.graphql_cache:
        door = _cache_answers(door, runtime, read, limits)
    door = _guard(door, limits)  # before the cache reads anything
    app.door = allow_origins(door, origins)  # the outermost: preflights never reach the guard
    return app


class _Tradetape(FastAPI):
    """FastAPI whose HTTP requests enter through ``door``: CORS, then the GraphQL guard and
    the answer cache (each passes other paths through), then FastAPI's own stack
    (``_AppStack``: its error and body-limit layers, the routes). A cached answer is thus
    sent before the framework's layers, which it does not need (its errors are the guard's);
    lifespan and websockets go straight to FastAPI."""

    door: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.door is not None:
            await self.door(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class _AppStack:
    """The app as FastAPI alone would answer (behind the door)."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await FastAPI.__call__(self.app, scope, receive, send)


def _graphql_router(runtime: Runtime, limits: RequestLimits, read: ReadSide):
    """Strawberry's router over the schema (imported and built here, on the build's
    thread), answering a browser's GET with the offline GraphiQL page."""
    from api.graphql.router import make_graphql_router

    router = make_graphql_router(runtime, limits, read=read)
    serve_graphiql_offline(router)
    return router


def _account_pages(app: FastAPI, runtime: Runtime) -> None:
    from api.account_pages import add_account_pages

    add_account_pages(app, runtime)


def _stripe_webhook(app: FastAPI, runtime: Runtime) -> None:
    from api.stripe_webhook import add_stripe_webhook

    add_stripe_webhook(app, runtime)


def _webhooks(app: FastAPI, runtime: Runtime) -> None:
    from api.webhooks import add_webhook_routes

    add_webhook_routes(app, runtime)


def _dashboard(app: FastAPI) -> None:
    from api.dashboard_page import serve_dashboard

    serve_dashboard(app)


def _guard(app: Any, limits: RequestLimits) -> Any:
    from api.graphql.guard import GraphQLRequestGuard

    return GraphQLRequestGuard(app, path="/graphql", limits=limits)


def _cache_answers(app: Any, runtime: Runtime, read, limits: RequestLimits) -> Any:
    from api.graphql.owner_versions import OwnerVersions
    from api.graphql.response_cache import GraphQLResponseCache

    def now():  # the runtime's clock at each call: tests replace it
        return runtime.clock.now()

    def caller(token: str) -> tuple:
        p = runtime.identity.authenticate(token)
        return (p.user_id, p.role, p.email_verified)

    versions = OwnerVersions(runtime.trading, read)

    def mark_version(pair: str) -> int:
        tape = getattr(runtime.loop, "tape", None)
        return 0 if tape is None else tape.pair_version(pair)

    def scope_of(identity: tuple) -> str | None:  # an administrator sees every owner's
        return None if str(identity[1]) == "admin" else str(identity[0])

    return GraphQLResponseCache(app, path="/graphql", snapshot=versions.snapshot,
                                version_of=versions.version_of,
                                mark_version=mark_version,
                                token_expiry=runtime.identity.access_token_expiry,
                                authenticate=caller, now=now, scope_of=scope_of,
                                max_tokens=limits.max_document_tokens)
