"""What a projection is: named tables, handlers for the event kinds it reads, and the small
in-memory state it needs to compute row changes without reading the database per event.

A projection never writes: ``apply`` records row changes in a :class:`Changes` and the runner
writes a whole batch of them with the tracking position in one transaction. ``load``
restores the in-memory state from the projection's own tables, which is what makes a
restarted (or crashed) projection continue exactly where its last commit left it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from projections.facts import Fact
from projections.store import ViewStore
from projections.tables import Changes, Table, schema_hash

Handler = Callable[[Any, Fact, Changes], None]


def on(*kinds: str) -> Callable[[Handler], Handler]:
    """Marks a method as the handler of facts of ``kinds`` (e.g. ``"Order.Filled"``)."""

    def mark(method: Handler) -> Handler:
        method.handles = kinds  # type: ignore[attr-defined]
        return method

    return mark


class Projection:
    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    description: ClassVar[str] = ""
    reads_all: ClassVar[bool] = False  # True: ``apply`` gets every fact, handled or not
    # Raised when what the handlers write changes but the tables' shape does not: stored
    # rows of an older revision are rebuilt like rows of another shape (0: none yet).
    revision: ClassVar[int] = 0
    handlers: ClassVar[dict[str, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for kind in getattr(attr, "handles", ()):
                    found[kind] = attr
        cls.handlers = found

    @classmethod
    def schema(cls) -> str:
        return schema_hash(cls.tables, cls.revision)

    @classmethod
    def upgrade(cls, store: ViewStore, stored_hash: str) -> bool:
        """Bring tables an older version made (``stored_hash``) to this one in place, when
        a few statements give exactly what a rebuild would; True if they are now current.
        None here: a rebuild from the log (the default for every change)."""
        return False

    @classmethod
    def upgrade_in_place(cls, store: ViewStore, stored_hash: str,
                         make: Callable[[Any, int], None]) -> bool:
        """For ``upgrade``: ``make(cursor, generation)`` brings the tables up to date in
        one transaction with the tracking row's hash moved from ``stored_hash`` to this
        version's; True if they are now current."""
        tracking = store.q("projection_tracking")
        with store.transaction() as cur:
            # the tracking row first: a second process upgrading waits here, then finds
            # the hash moved on and makes nothing
            store.execute(cur, f"UPDATE {tracking} SET schema_hash = ? WHERE name = ? "
                          "AND schema_hash = ?", (cls.schema(), cls.name, stored_hash))
            if cur.rowcount == 1:
                (generation,), = store.execute(
                    cur, f"SELECT generation FROM {tracking} WHERE name = ?",
                    (cls.name,)).fetchall()
                make(cur, generation)
        return store.tracking()[cls.name].schema_hash == cls.schema()

    def load(self, store: ViewStore, suffix: str = "") -> None:
        """Restore in-memory state from this projection's tables (empty after a rebuild)."""

    def route(self, kind: str) -> Callable[[Fact, Changes], None] | None:
        """What to call with facts of ``kind``, or None when this projection ignores them."""
        if self.reads_all:
            return self.apply
        handler = self.handlers.get(kind)
        return None if handler is None else handler.__get__(self)

    def apply(self, fact: Fact, out: Changes) -> None:
        handler = self.handlers.get(fact.kind)
        if handler is not None:
            handler(self, fact, out)

    def end_batch(self, out: Changes) -> None:
        """Called once per batch after its last fact, before the batch is written."""
