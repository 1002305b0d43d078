"""Live updates for subscribers (GraphQL subscriptions): every event appended to the log is
offered, in log order, to each subscriber whose filter accepts it.

The server's live loop publishes after each step; subscribers live on an asyncio loop, so
delivery hops threads with ``call_soon_threadsafe``. A slow subscriber loses nothing: its
queue is unbounded, and it is dropped when it unsubscribes.
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
        """Offer every event appended since the last call; returns how many there were."""
        with self._publishing:
            return self._publish_new()

    def _publish_new(self) -> int:
        count = 0
        while page := self.app.recorder.select_notifications(
            start=self.position, limit=PAGE, inclusive_of_start=False
        ):
            with self._lock:
                subscribers = list(self._subscribers.values())
            for notification in page:
                count += 1
                if not subscribers:
                    continue
                event = self.app.mapper.to_domain_event(notification)
                for sub in subscribers:
                    if sub.accepts(event):
                        sub.loop.call_soon_threadsafe(sub.queue.put_nowait, event)
            self.position = page[-1].id
        return count
