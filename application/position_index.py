"""Which positions each owner has and which exits each position has, read from the log
(their creation events only), kept current by reading on from the last position seen."""

from __future__ import annotations

import threading
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.positions import Position, PositionExit
from domain.recording import topic_of


class PositionIndex:
    def __init__(self, trading: Trading):
        self.trading = trading
        self._next = 1  # the log position to read from
        self._positions: list[tuple[str, UUID]] = []  # (owner, position), oldest first
        self._exits: dict[UUID, list[UUID]] = {}
        self._lock = threading.Lock()
        self._topics = [topic_of(Position.Opened), topic_of(PositionExit.Attached)]

    def catch_up(self) -> None:
        with self._lock:
            for notification in read_log(self.trading, self._topics, first=self._next):
                self._next = notification.id + 1
                self._add(notification.originator_id, notification.topic)

    def _add(self, aggregate_id: UUID, topic: str) -> None:
        if topic == self._topics[0]:
            owner = self.trading.load(aggregate_id, Position).owner_id
            self._positions.append((owner, aggregate_id))
        else:
            group = self.trading.load(aggregate_id, PositionExit)
            self._exits.setdefault(group.position_id, []).append(aggregate_id)

    def of(self, owner_id: str) -> list[UUID]:
        """The owner's positions, oldest first."""
        self.catch_up()
        return [p for owner, p in self._positions if owner == owner_id]

    def open_of(self, owner_id: str | None) -> list[UUID]:
        """The open (or pending) positions of ``owner_id`` (None: everyone's)."""
        self.catch_up()
        return [p for owner, p in self._positions if owner_id in (None, owner)
                and self.trading.load(p, Position).is_open]

    def exits(self, position_id: UUID) -> list[UUID]:
        self.catch_up()
        return list(self._exits.get(position_id, ()))
