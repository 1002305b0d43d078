"""The read that every answer of the cache waits for (``FreshReads``): one at a time, on a
thread of its own, shared by every request that arrived before it began."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class FreshReads:
    """At most one ``read()`` in flight, on a worker thread; each caller gets the result of
    a read that *began after it asked*, so nothing it answers from is older than its
    request, while any number of concurrent requests share one read (at 500 requests/s,
    a database round trip each would cost more than the cached answers themselves).

    The reads run on a thread of their own (:class:`_Reader`), handed over through a
    lock-free queue: anyio's worker threads take a ``queue.Queue``'s lock on both sides, so
    the event loop could wait for a worker that holds it to be scheduled again.
    ``read_on_loop``: the same read awaited on the event loop, tried first (no hand-over
    to a thread and back, once per request at an even rate); None from it: ``read()`` on
    the thread instead. ``read_now``: what a read would give, known without one (the
    last read, while nothing was written since it began: ``OwnerVersions.kept_snapshot``),
    else None; asked first while no read is pending. ``stamp``: what was heard of writes
    so far (``OwnerVersions.stamp``; None: not known): a request whose stamp is the one
    taken before the running read began shares that read instead of waiting for the next
    (nothing was written meanwhile, so it is as fresh as a read begun after it asked)."""

    def __init__(self, read: Callable[[], Any],
                 read_on_loop: Callable[[], Awaitable[Any]] | None = None,
                 read_now: Callable[[], Any] | None = None,
                 stamp: Callable[[], Any] | None = None):
        self.read, self.read_on_loop, self.read_now = read, read_on_loop, read_now
        self.stamp = stamp
        self.pending: list[asyncio.Future] | None = None  # the next read's waiters
        # the running read's waiters and the stamp before it began (None: not known)
        self.current: list[asyncio.Future] | None = None
        self.current_stamp: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None  # theirs
        self.running = False
        self.task: asyncio.Task | None = None
        self.reads = 0
        self.reader = _Reader(read)

    async def get(self) -> Any:
        if self.read_now is not None and self.pending is None:
            found = self.read_now()  # the last read still holds: no read, no waiting
            if found is not None:
                return found
        loop = asyncio.get_running_loop()
        if self.pending is not None and self.loop is not loop:
            self.pending, self.running = None, False  # a loop that is gone (tests)
        mine = loop.create_future()  # its own: a waiter cancelled cancels no other's
        if (self.current is not None and self.loop is loop and self.current_stamp is not None
                and self.stamp is not None and self.stamp() == self.current_stamp):
            self.current.append(mine)  # nothing written since the running read began
        elif self.pending is None:
            self.pending, self.loop = [mine], loop
            if not self.running:
                self.running = True
                self.task = loop.create_task(self._run())  # kept: a task only weakly held dies
        else:
            self.pending.append(mine)
        return await mine

    async def _run(self) -> None:
        try:
            while self.pending is not None:
                waiting, self.pending = self.pending, None
                self.current, self.current_stamp = waiting, (
                    None if self.stamp is None else self.stamp())
                self.reads += 1
                try:
                    found = None
                    if self.read_on_loop is not None:
                        found = await self.read_on_loop()
                    if found is None:
                        found = await self.reader.run()
                except Exception as error:
                    for waiter in waiting:
                        if not waiter.done():  # a cancelled one's request is gone
                            waiter.set_exception(error)
                else:
                    for waiter in waiting:
                        if not waiter.done():
                            waiter.set_result(found)
                finally:
                    self.current = None
        finally:
            self.running = False


class _Reader:
    """``read()`` on a daemon thread of its own, started when needed and ended after
    ``IDLE_SECONDS`` without work (an app made and dropped leaves no thread behind)."""

    IDLE_SECONDS = 10.0

    def __init__(self, read: Callable[[], Any]):
        self.read = read
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    async def run(self) -> Any:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.jobs.put((loop, done))
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="graphql-fresh-reads",
                                               daemon=True)
                self.thread.start()
        return await done

    def _serve(self) -> None:
        while True:
            try:
                loop, done = self.jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self.lock:
                    if self.jobs.empty():  # a job put meanwhile finds this thread gone
                        self.thread = None
                        return
                continue
            try:
                found, error = self.read(), None
            except Exception as failure:
                found, error = None, failure
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits now
                loop.call_soon_threadsafe(_settle, done, found, error)


def _settle(done: asyncio.Future, found: Any, error: Exception | None) -> None:
    if done.cancelled():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(found)
