"""The GraphQL layer's own connections to the view store, and where slow reads run.

Reads through the view store are short and run on the caller's thread. On PostgreSQL they
take one of a few connections of their own (:data:`CONNECTIONS`, opened as they are first
needed), and the read version (which every request waits for, a cached answer's too) one
more (:meth:`ReadSide.run_apart`): with one connection behind a lock, every answer being
made and every read of the read version waited for every other, and the answers that went
stale together at a new candle queued behind one another (p99 over a second at 500
requests/s under a live run).
A SQLite file keeps one connection behind a lock (what the tests trace); the ``memory``
store's views exist only in the runtime's process-local database, which is then shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread

from application.runtime import Runtime
from application.settings import parse_database_url
from projections.store import TRACKING, ViewStore, open_view_store

T = TypeVar("T")

CONNECTIONS = 4  # on PostgreSQL; more only queue in the server's 2 cores' worth of work


class ReadSide:
    def __init__(self, runtime: Runtime, connections: int = CONNECTIONS):
        self.runtime = runtime
        self.connections = connections
        self._store: ViewStore | None = None
        self._borrowed: ViewStore | None = None  # the runtime's own (memory): never closed
        self._idle: list[ViewStore] = []  # the last one given back is taken first
        self._pool: list[ViewStore] = []  # every connection of the pool, in use or idle
        self._opening = 0  # connections being opened
        self._free = threading.Condition()
        self._apart: ViewStore | None = None  # the read version's own (PostgreSQL)
        self._apart_lock = threading.Lock()

    @property
    def store(self) -> ViewStore:
        """The first connection (the only one, but on PostgreSQL)."""
        with self._free:
            if self._store is None:
                database = parse_database_url(self.runtime.settings.database_url)
                if database.kind == "memory":
                    self._store = self._borrowed = self.runtime.read_models.store  # type: ignore[attr-defined]
                else:
                    self._store = open_view_store(database)
                self._idle.append(self._store)
                self._pool.append(self._store)
            return self._store

    def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``query(store, *args, **kwargs)`` on a connection no other caller uses
        meanwhile."""
        store = self._take()
        try:
            return query(store, *args, **kwargs)
        finally:
            self._give_back(store)

    def run_apart(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run`` on a connection of its own, one caller at a time: the read version's,
        which every request (a cached answer's too) waits for, never waits for the answers
        being made (PostgreSQL; elsewhere the one connection)."""
        if self.store.kind != "postgres":
            return self.run(query, *args, **kwargs)
        with self._apart_lock:
            if self._apart is None:
                self._apart = self.store.clone()
            return query(self._apart, *args, **kwargs)

    def _take(self) -> ViewStore:
        """An idle connection, a new one while there are fewer than ``connections``, else
        the next one given back."""
        first = self.store
        size = self.connections if first.kind == "postgres" else 1
        with self._free:
            while not self._idle and len(self._pool) + self._opening >= size:
                self._free.wait()
            if self._idle:
                return self._idle.pop()
            self._opening += 1
        store = None
        try:
            store = first.clone()  # outside the lock: the others go on meanwhile
        finally:
            with self._free:
                self._opening -= 1
                if store is not None:
                    self._pool.append(store)
                self._free.notify()
        return store

    def _give_back(self, store: ViewStore) -> None:
        with self._free:
            if any(store is mine for mine in self._pool):
                self._idle.append(store)
                self._free.notify()
                return
        if store is not self._borrowed:  # taken before ``close``: closed once given back
            store.close()

    async def run_async(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run`` on a worker thread: the event loop keeps serving while the database
        answers."""
        return await to_thread.run_sync(lambda: self.run(query, *args, **kwargs))

    def version(self) -> tuple[Any, ...]:
        """What every read answers from: the log's head, then each projection's position
        and generation. Equal versions, equal answers."""
        head = self.runtime.trading.recorder.max_notification_id() or 0
        positions = self.run(lambda store: store.query(
            f"SELECT name, position, generation FROM {store.q(TRACKING)} ORDER BY name"))
        return (head, *map(tuple, positions))

    async def slow(self, work: Callable[..., T], *args: Any) -> T:
        """Work that reads the event log (time travel, histories): on a worker thread, so the
        server keeps answering meanwhile."""
        return await to_thread.run_sync(lambda: work(*args))

    def close(self) -> None:
        """Closes its own connections (one in use: when it is given back)."""
        with self._free:
            idle = [store for store in self._idle if store is not self._borrowed]
            self._store, self._idle, self._pool = None, [], []
        with self._apart_lock:
            if self._apart is not None:
                idle.append(self._apart)
            self._apart = None
        for store in idle:
            store.close()
