"""``/graphql`` served by a router made on a thread of its own, so that the server answers
``/health`` (and the rest) without waiting for it.

Importing strawberry, graphql-core and the schema's modules and building the schema is the
largest fixed part of a server's start (~2 s on a loaded 2-core machine, more than opening
the stores). The server starts that work once it has started the runtime; a GraphQL request
(or websocket) that arrives before it is done waits for it, off the event loop, and is then
answered exactly as the router answers every later one: nothing is answered by a
half-built schema. A build that fails is reported once on stderr and every GraphQL request
then fails as the import would have, with the same error."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from starlette.routing import BaseRoute, Match

PATH = "/graphql"


class GraphQLBuild:
    """The GraphQL router, made once on a background thread (``start``) or by the first
    request that needs it (``router``)."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._router: Any = None
        self._error: BaseException | None = None
        self.seconds: float | None = None
        self.after_build: Callable[[], None] | None = None  # e.g. gc.freeze (serve)

    def start(self) -> None:
        """Build on a daemon thread (at most once)."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return
            self._thread = threading.Thread(target=self._build, name="graphql-schema", daemon=True)
            self._thread.start()

    def _build(self) -> None:
        began = time.perf_counter()
        try:
            self._router = self._make()
        except BaseException as error:  # re-raised to every request that needs the router
            self._error = error
            sys.stderr.write(
                f"GraphQL schema could not be built: {type(error).__name__}: {error}\n"
            )
        finally:
            self.seconds = time.perf_counter() - began
            self._done.set()
        if self._error is None and self.after_build is not None:
            self.after_build()

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self._error is None

    def router(self) -> Any:
        """The router, waiting for the build (started here if nothing started it)."""
        self.start()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._router

    async def router_async(self) -> Any:
        if self._done.is_set():
            return self.router()
        return await to_thread.run_sync(self.router)


class LazyGraphQLRoute(BaseRoute):
    """Takes ``/graphql`` (HTTP and websocket) in the app's routes, where the router's own
    routes stood, and hands each request to the router once it is built. The router's routes
    are mounted under ``/graphql`` in a router of their own, so matching, methods (405) and
    websockets are the router's own."""

    def __init__(self, build: GraphQLBuild, prefix: str = PATH):
        self.build, self.prefix = build, prefix
        self._mounted: Any = None

    def matches(self, scope: dict) -> tuple[Match, dict]:
        if scope["type"] in ("http", "websocket") and scope["path"] == self.prefix:
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any):
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        if self._mounted is None:
            from fastapi import APIRouter

            router = await self.build.router_async()
            mounted = APIRouter()
            mounted.include_router(router, prefix=self.prefix)
            self._mounted = mounted
        await self._mounted(scope, receive, send)
