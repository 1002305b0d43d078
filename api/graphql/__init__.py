"""The GraphQL API: ``make_graphql_router(runtime)`` (api/graphql/router.py) serves it.

Importing this package is cheap on purpose: strawberry, graphql-core and the schema's ~100
modules (about 2 s of a server's start on a loaded machine) load only when the router is
made, so the server answers ``/health`` before they are in (see api/lazy_graphql.py), and
submodules such as the request guard or the read side come without them."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "make_graphql_router":
        from api.graphql.router import make_graphql_router

        return make_graphql_router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["make_graphql_router"]
