"""Running a command from a mutation: refused while the server shuts down; off the event
loop (commands take the paper-trading lock and may hash passwords); then the read models
catch up, so the caller's next query reads its own write."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread
from graphql import GraphQLError

from application.runtime import Runtime

T = TypeVar("T")


async def execute(runtime: Runtime, command: Callable[[], T]) -> T:
    if not runtime.accepting_commands:
        raise GraphQLError("the server is shutting down and accepts no commands; try again "
                           "in a moment", extensions={"code": "SHUTTING_DOWN"})

    def run() -> T:
        try:
            return command()
        finally:
            runtime.refresh()  # also after a refusal that recorded something (a rejected order)

    return await to_thread.run_sync(run)
