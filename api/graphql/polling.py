"""A background job's state pushed on a subscription: now, then whenever it moves (looked
at five times a second), ending with its last state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Hashable
from decimal import Decimal
from typing import Any, TypeVar

from graphql import GraphQLError

T = TypeVar("T")
POLL_SECONDS = 0.2
ENDED = ("completed", "failed", "interrupted")


async def job_updates(state: Any, moved: Callable[[Any], Hashable],
                      shown: Callable[[Any], T]) -> AsyncGenerator[T, None]:
    """``shown(state)`` each time ``moved(state)`` changes, until ``state.status`` ends."""
    last = None
    while True:
        now = moved(state)
        if now != last:
            last = now
            yield shown(state)
        if state.status in ENDED:
            return
        await asyncio.sleep(POLL_SECONDS)


async def progress_updates(state: Any | None, missing: str, moved: Callable[[Any], Hashable],
                           shown: Callable[[Any], T]) -> AsyncGenerator[T, None]:
    """A job's progress subscription: ``NOT_FOUND`` (``missing`` says what) when there is no
    such job the caller may see, else ``job_updates``. An async generator, so the error
    arrives on the subscription's stream, as it always did."""
    if state is None:
        raise GraphQLError(missing, extensions={"code": "NOT_FOUND"})
    async for update in job_updates(state, moved, shown):
        yield update


def fraction(done: int, total: int, status: str) -> Decimal:
    """``done / total`` from 0 to 1 (with no total: 1 once completed, else 0)."""
    if not total:
        return Decimal(status == "completed")
    return min(Decimal(done) / Decimal(total), Decimal(1))
