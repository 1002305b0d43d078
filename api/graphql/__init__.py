"""The GraphQL API: ``make_graphql_router(runtime)`` serves it (GraphiQL on GET, queries and
mutations on POST, subscriptions over websockets with graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from strawberry.fastapi import GraphQLRouter

from api.graphql.context import Context
from api.graphql.read_side import ReadSide
from api.graphql.schema import build_schema
from application.runtime import Runtime


def make_graphql_router(runtime: Runtime) -> GraphQLRouter:
    read = ReadSide(runtime)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            read.close()

    async def context() -> Context:
        return Context(runtime, read)

    router = GraphQLRouter(build_schema(), context_getter=context, graphql_ide="graphiql",
                           lifespan=lifespan)
    router.read_side = read  # type: ignore[attr-defined] (tests count its queries)
    return router


__all__ = ["make_graphql_router"]
