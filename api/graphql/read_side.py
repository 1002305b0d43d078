"""The GraphQL layer's own connection to the view store, and where slow reads run.

Reads through the view store are short and run on the caller's thread one at a time (a lock
guards the connection: tests and websockets may call from several threads). A SQLite file or
PostgreSQL schema gets a connection of its own; the ``memory`` store's views exist only in
the runtime's process-local database, which is then shared.
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


class ReadSide:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._store: ViewStore | None = None
        self._owned = False
        self._lock = threading.Lock()

    @property
    def store(self) -> ViewStore:
        if self._store is None:
            database = parse_database_url(self.runtime.settings.database_url)
            if database.kind == "memory":
                self._store = self.runtime.read_models.store  # type: ignore[attr-defined]
            else:
                self._store, self._owned = open_view_store(database), True
        return self._store

    def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``query(store, *args, **kwargs)`` on this connection."""
        with self._lock:
            return query(self.store, *args, **kwargs)

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
        with self._lock:
            if self._store is not None and self._owned:
                self._store.close()
            self._store, self._owned = None, False
