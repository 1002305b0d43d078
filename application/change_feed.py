"""Live updates for subscribers (GraphQL subscriptions): every event appended to the log is
offered, in log order, to each subscriber whose filter accepts it.

The server's live loop publishes after each step; subscribers live on an asyncio loop, so
delivery hops threads with ``call_soon_threadsafe``. A slow subscriber loses nothing: its
queue is unbounded, and it is dropped when it unsubscribes. While nobody subscribes, a
publish reads no event: it only moves past the log's head (an api process under a live
run read every page of the log, thousands of events a second, for no one).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from application.replay import PAGE

Filter = Callable[[Any], bool]


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    accepts: Filter


class ChangeFeed:
    def __init__(self, app: Application):
        self.app = app
        self._subscribers: dict[int, _Subscriber] = {}
        self._lock = threading.Lock()
        self._publishing = threading.Lock()  # the live loop and commands both publish
        self._next_id = 0
        self.position = app.recorder.max_notification_id() or 0

    def subscribe(self, accepts: Filter) -> tuple[int, asyncio.Queue]:
        """From the running asyncio loop: a queue that receives accepted domain events."""
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._next_id += 1
            key = self._next_id
            self._subscribers[key] = _Subscriber(asyncio.get_running_loop(), queue, accepts)
        return key, queue

    def unsubscribe(self, key: int) -> None:
        with self._lock:
            self._subscribers.pop(key, None)

    def publish_new(self) -> int:
        """Offer every event appended since the last call; returns how many were offered
        (none while nobody subscribes)."""
        with self._publishing:
            return self._publish_new()

    def _publish_new(self) -> int:
        count = 0
        while page := self._page():
            with self._lock:
                subscribers = list(self._subscribers.values())
            for notification in page:
                count += 1
                event = self.app.mapper.to_domain_event(notification)
                for sub in subscribers:
                    if sub.accepts(event):
                        sub.loop.call_soon_threadsafe(sub.queue.put_nowait, event)
            self.position = page[-1].id
        return count

    def _page(self) -> list[Any]:
        """The next page for the subscribers; none while there are none (the position then
        moves to the head: what a subscriber joining later receives starts there)."""
        if not self._subscribers:
            head = self.app.recorder.max_notification_id() or 0
            # Looked at again after the head: a subscriber who joined before it was read
            # receives its events; the events up to it predate any who join after.
            if not self._subscribers:
                self.position = max(self.position, head)
                return []
        return self.app.recorder.select_notifications(
            start=self.position, limit=PAGE, inclusive_of_start=False)
