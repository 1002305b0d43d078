"""What a subscription listens to: a filter for the change feed that follows a set of
aggregates and adopts new ones that belong (a deal opened by the bot, an order it placed).

It runs on the thread that publishes changes; the set only grows by what belongs, and drops
a deal or an order once it is final.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

FINAL = frozenset({"Deal.Closed", "Deal.Cancelled", "Order.Cancelled", "Order.Rejected",
                   "Order.Expired"})


def kind(event: Any) -> str:
    return type(event).__qualname__


class Interest:
    def __init__(self, belongs: Callable[[Any], bool], ids: Iterable[str] = ()):
        self.belongs = belongs
        self.ids: set[str] = set(ids)

    def follow(self, ids: Iterable[str]) -> None:
        self.ids.update(ids)

    def __call__(self, event: Any) -> bool:
        oid = str(event.originator_id)
        if oid in self.ids:
            if kind(event) in FINAL:
                self.ids.discard(oid)
            return True
        if self.belongs(event):
            self.ids.add(oid)
            return True
        return False


def drain(queue: Any) -> list[Any]:
    """Everything already waiting in an asyncio queue."""
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found
