"""Which positions each owner has and which exits each position has (and which of them
buy), read from the log (their creation events only), kept current by reading on from the
last position seen."""

from __future__ import annotations

import threading
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.orders import OrderSide
from domain.positions import Position, PositionExit
from domain.recording import topic_of


class PositionIndex:
    def __init__(self, trading: Trading):
        self.trading = trading
        self._next = 1  # the log position to read from
        self._positions: list[tuple[str, UUID]] = []  # (owner, position), oldest first
        self._exits: dict[UUID, list[UUID]] = {}
        self._buying: set[UUID] = set()  # buy trailing stops (a side never changes)
        self._lock = threading.Lock()
        self._topics = [topic_of(Position.Opened), topic_of(PositionExit.Attached)]

    def catch_up(self) -> None:
        with self._lock:
            for notification in read_log(self.trading, self._topics, first=self._next):
                self._next = notification.id + 1
                self._add(notification)

    def _add(self, notification) -> None:
        """From the creation event itself: a position's owner and an exit's position are
        set there and never change, so no aggregate is loaded (a start used to load every
        position and exit of the log, one query each, to read these two fields)."""
        created = self.trading.mapper.to_domain_event(notification)
        if notification.topic == self._topics[0]:
            self._positions.append((created.owner_id, notification.originator_id))
        else:
            self._exits.setdefault(created.position_id, []).append(
                notification.originator_id)
            if created.side is OrderSide.BUY:
                self._buying.add(notification.originator_id)

    def of(self, owner_id: str) -> list[UUID]:
        """The owner's positions, oldest first."""
        self.catch_up()
        return [p for owner, p in self._positions if owner == owner_id]

    def open_of(self, owner_id: str | None) -> list[UUID]:
        """The open (or pending) positions of ``owner_id`` (None: everyone's)."""
        self.catch_up()
        return [p for owner, p in self._positions if owner_id in (None, owner)
                and self.trading.load(p, Position).is_open]

    def open_positions(self) -> list[Position]:
        """Everyone's open (or pending) positions, oldest first, loaded together
        (``Trading.load_many``: a few queries, not one or two a position)."""
        self.catch_up()
        ids = [p for _, p in self._positions]
        loaded = self.trading.load_many(ids, Position)
        return [loaded[p] for p in ids if p in loaded and loaded[p].is_open]

    def exits(self, position_id: UUID) -> list[UUID]:
        self.catch_up()
        return list(self._exits.get(position_id, ()))

    def buy_exits(self, position_ids: list[UUID]) -> dict[UUID, list[UUID]]:
        """The buy trailing stops of each of ``position_ids`` (those that have one), read
        on once for all: what a position's risk figure loads (its sell exits buy nothing)."""
        self.catch_up()
        found = {p: [e for e in self._exits.get(p, ()) if e in self._buying]
                 for p in position_ids}
        return {p: exits for p, exits in found.items() if exits}
