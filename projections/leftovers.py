"""What an unfinished rebuild leaves behind (its process killed, its server stopped before
the swap): shadow tables (``<table>__rebuild``); a rebuild split between processes ends
its processes with it (``rebuild._end_with_parent``). A new rebuild of the same projection
drops the tables first (:func:`drop_leftovers`), so that nothing of the earlier one is
mixed into it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from projections.framework import Projection
from projections.store import SHADOW, ViewStore

log = logging.getLogger(__name__)


def drop_leftovers(store: ViewStore, classes: Sequence[type[Projection]]) -> list[str]:
    """Drop the shadow tables of ``classes`` an earlier rebuild left; the names dropped.

    Call it holding those projections' rebuild locks: no rebuild under way owns them then.
    Only ``<table>__rebuild`` of the projections' own tables: never a live table, nor the
    leftovers of another projection (another rebuild may own those). One table a
    transaction: a batch still being rolled back for a process of the earlier rebuild is
    waited for, never deadlocked with."""
    dropped = []
    for cls in classes:
        for table in cls.tables:
            name = table.name + SHADOW
            if store.table_exists(name):
                with store.transaction() as cur:
                    store.execute(cur, f"DROP TABLE IF EXISTS {store.q(name)}")
                dropped.append(name)
    if dropped:
        log.warning("dropped %d table(s) an unfinished rebuild left: %s", len(dropped),
                    ", ".join(dropped))
    return dropped
