"""The GraphQL layer's own connections to the view store, and where slow reads run.

Reads through the view store are short and run on the caller's thread. On PostgreSQL they
take a connection of a ``psycopg_pool`` pool of a few (:data:`CONNECTIONS`, opened as they
are first needed, a broken one replaced), and the read version (which every request waits
for, a cached answer's too) one of a pool of its own (:meth:`ReadSide.run_apart`): with one
connection behind a lock, every answer being made and every read of the read version
waited for every other, and the answers that went stale together at a new candle queued
behind one another (p99 over a second at 500 requests/s under a live run). The read
version's statement itself is awaited on the event loop, on a connection of the loop's own
(:meth:`ReadSide.query_on_loop`), not sent from a thread.
A SQLite file keeps one connection behind a lock (what the tests trace); the ``memory``
store's views exist only in the runtime's process-local database, which is then shared.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from psycopg_pool import ConnectionPool

from api.graphql.change_watch import ChangeWatch
from application.runtime import Runtime
from application.settings import _connect_kwargs, parse_database_url
from projections.store import TRACKING, PostgresViewStore, ViewStore, open_view_store

T = TypeVar("T")

CONNECTIONS = 4  # on PostgreSQL; more only queue in the server's 2 cores' worth of work


class ReadSide:
    def __init__(self, runtime: Runtime, connections: int = CONNECTIONS):
        self.runtime = runtime
        self.connections = connections
        self._database = parse_database_url(runtime.settings.database_url)
        self._opening = threading.Lock()  # the store and the pools are opened once
        self._store: ViewStore | None = None  # SQLite or memory: the one connection
        self._borrowed = False  # the runtime's own (memory): never closed here
        self._one = threading.Lock()  # its callers, one at a time
        self._pools: dict[str, ConnectionPool] = {}  # "answers", "version" (PostgreSQL)
        # an event loop's own connection (PostgreSQL: ``query_on_loop``), one per loop
        self._on_loop: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        # its cursor, kept between statements while idle (a new cursor per statement, and
        # the statement sent unprepared, cost a fifth of each read's processor time)
        self._idle_cursor: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._views_ready = False  # the runtime's views opened (see ``_views``)
        # an event loop's LISTEN for writes (PostgreSQL: ``change_watch``), one per loop
        self._watches: weakref.WeakKeyDictionary[Any, ChangeWatch] = (
            weakref.WeakKeyDictionary())

    @property
    def postgres(self) -> bool:
        return self._database.kind == "postgres"

    @property
    def store(self) -> ViewStore:
        """The one connection, on SQLite and in memory (PostgreSQL reads use the pools)."""
        with self._opening:
            if self._store is None:
                self._borrowed = self._database.kind == "memory"
                self._store = (self.runtime.read_models.store  # type: ignore[attr-defined]
                               if self._borrowed else open_view_store(self._database))
            return self._store

    def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``query(store, *args, **kwargs)`` on a connection no other caller uses
        meanwhile (on PostgreSQL, waiting for one while all ``connections`` are in use)."""
        if self.postgres:
            return self._on(self._pool("answers", self.connections), query, args, kwargs)
        with self._one:
            return query(self.store, *args, **kwargs)

    def run_apart(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run`` on a connection of its own, one caller at a time: the read version's,
        which every request (a cached answer's too) waits for, never waits for the answers
        being made (PostgreSQL; elsewhere the one connection)."""
        if not self.postgres:
            return self.run(query, *args, **kwargs)
        return self._on(self._pool("version", 1), query, args, kwargs)

    async def query_on_loop(self, text: str) -> list[tuple] | None:
        """``text`` (no parameters) on a connection of the running event loop's own,
        awaited there: the read version's statement, which every request waits for, then
        costs no hand-over to a worker thread and back (under a live run that hand-over,
        once per request, cost more of the api's processor time than the statement).
        PostgreSQL only; None elsewhere (read on a thread instead). A statement that
        fails or is cancelled drops its connection (whatever state it was left in; the
        error is raised) and the next call opens another."""
        if not self.postgres or not self._views_open():
            return None  # (until the views are open, reads wait for them on a thread)
        import psycopg

        loop = asyncio.get_running_loop()
        conn = self._on_loop.get(loop)
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                **_connect_kwargs(self._database.env), autocommit=True)
            with self._opening:
                if self._on_loop.get(loop) not in (None, conn):  # opened meanwhile
                    _finish(self._on_loop.pop(loop))
                self._on_loop[loop] = conn
        cursor = self._idle_cursor.pop(loop, None)  # None while another statement runs
        if cursor is None or cursor.connection is not conn:
            cursor = conn.cursor()
        try:
            await cursor.execute(text, prepare=True)  # the same statement every time
            rows = await cursor.fetchall()
        except BaseException:
            with self._opening:
                if self._on_loop.get(loop) is conn:
                    del self._on_loop[loop]
            _finish(conn)
            raise
        self._idle_cursor[loop] = cursor
        return rows

    def change_watch(self, channels: tuple[str, ...]) -> ChangeWatch | None:
        """The running event loop's watch of writes to the log and the views (LISTEN on
        ``channels``: ``api/graphql/change_watch.py``); None elsewhere than PostgreSQL."""
        if not self.postgres:
            return None
        loop = asyncio.get_running_loop()
        watch = self._watches.get(loop)
        if watch is None or watch.channels != channels:
            if watch is not None:
                watch.close()
            watch = self._watches[loop] = ChangeWatch(_connect_kwargs(self._database.env),
                                                      channels)
        return watch

    def written(self) -> None:
        """This process may have written (a mutation answered): every watch's next stamp
        moves, so the read version is read again."""
        for watch in list(self._watches.values()):
            watch.written()

    def _views(self) -> None:
        """Wait, once, for the runtime's views to be opened: on PostgreSQL their open runs
        beside the engine's start, and a read before it could find no table yet."""
        if not self._views_ready:
            wait_open = getattr(self.runtime.read_models, "wait_open", None)
            if wait_open is not None:
                wait_open()
            self._views_ready = True

    def _views_open(self) -> bool:
        """``_views`` without waiting: whether the runtime's views are open by now."""
        if not self._views_ready:
            is_open = getattr(self.runtime.read_models, "is_open", None)
            self._views_ready = is_open is None or is_open()
        return self._views_ready

    def _pool(self, name: str, size: int) -> ConnectionPool:
        self._views()
        with self._opening:
            pool = self._pools.get(name)
            if pool is None:
                pool = self._pools[name] = ConnectionPool(
                    kwargs={**_connect_kwargs(self._database.env), "autocommit": True},
                    min_size=0, max_size=size, open=True, name=f"graphql-{name}",
                    num_workers=1)
            return pool

    def _on(self, pool: ConnectionPool, query: Callable[..., T], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> T:
        with pool.connection() as conn:
            return query(PostgresViewStore(self._database.env, conn=conn), *args, **kwargs)

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
        with self._opening:
            store, borrowed, self._store = self._store, self._borrowed, None
            pools, self._pools = list(self._pools.values()), {}
            on_loops = list(self._on_loop.values())
            self._on_loop.clear()
            watches = list(self._watches.values())
            self._watches.clear()
            self._idle_cursor.clear()
        for pool in pools:
            pool.close()
        for conn in on_loops:
            _finish(conn)
        for watch in watches:
            watch.close()
        if store is not None and not borrowed:
            with self._one:  # after the read under way, if any
                store.close()


def _finish(conn: Any) -> None:
    """Closes an event loop's connection from any thread, without awaiting (its loop may
    be gone): libpq's own close, after which psycopg sees it closed."""
    if not conn.closed:
        conn.pgconn.finish()
