"""One way to make a DataLoader over the read side: the batch's query runs on a worker
thread (``ReadSide.run_async``), so the event loop never waits for the database.

- :func:`by_ids`: ``query(store, ids)`` answers a dict by id, one query for the batch.
- :func:`per_key`: ``query(store, key)`` for each key of the batch (pages, portfolios, ...),
  in one hop to the worker thread; a cursor the list did not hand out becomes that key's
  error, the others still answer.
- :func:`in_thread`: any blocking ``work(keys)`` (the event store, identity) on a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from anyio import to_thread
from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections.queries import InvalidCursorError


def by_ids(read: ReadSide, query: Callable[..., dict], empty: Callable[[], Any] = lambda: None,
           ) -> DataLoader:
    async def load(ids: list[Hashable]) -> list[Any]:
        found = await read.run_async(query, ids)
        return [found[i] if i in found else empty() for i in ids]

    return DataLoader(load_fn=load)


def per_key(read: ReadSide, query: Callable[..., Any], cache: bool = True) -> DataLoader:
    def answer(keys: list[Any]) -> list[Any]:
        found: list[Any] = []
        for key in keys:
            try:
                found.append(read.run(query, key))
            except InvalidCursorError as error:
                found.append(error)
        return found

    async def load(keys: list[Any]) -> list[Any]:
        return await to_thread.run_sync(answer, keys)

    return DataLoader(load_fn=load, cache=cache)


def in_thread(work: Callable[[list[Any]], list[Any]]) -> DataLoader:
    async def load(keys: list[Any]) -> list[Any]:
        return await to_thread.run_sync(work, keys)

    return DataLoader(load_fn=load)
