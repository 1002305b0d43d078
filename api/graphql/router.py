"""The GraphQL router: ``make_graphql_router(runtime)`` serves the API (GraphiQL on GET,
queries and mutations on POST, subscriptions over websockets with graphql-transport-ws)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from strawberry.fastapi import GraphQLRouter

from api.graphql.context import Context
from api.graphql.guard import json_depth
from api.graphql.read_side import ReadSide
from api.graphql.schema import build_schema
from api.http_limits import RequestLimits
from application.runtime import Runtime


class _Router(GraphQLRouter):
    """Decodes JSON (a websocket message; HTTP bodies are checked before, by the guard)
    only up to the nesting limit: deeper is a message that is not JSON (closed 4400)."""

    max_json_depth = RequestLimits().max_json_depth

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None
        if json_depth(decoded) > self.max_json_depth:
            raise json.JSONDecodeError("nested too deeply", "", 0)
        return decoded


def make_graphql_router(runtime: Runtime, limits: RequestLimits | None = None, *,
                        read: ReadSide | None = None) -> GraphQLRouter:
    """``read``: the read side to answer from (made here unless given; the router's
    lifespan closes it either way)."""
    limits = limits or RequestLimits()
    read = read or ReadSide(runtime)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            read.close()

    async def context() -> Context:
        return Context(runtime, read)

    router = _Router(build_schema(limits), context_getter=context, graphql_ide="graphiql",
                     lifespan=lifespan)
    router.max_json_depth = limits.max_json_depth
    router.read_side = read  # type: ignore[attr-defined] (tests count its queries)
    return router


__all__ = ["make_graphql_router"]
