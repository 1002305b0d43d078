"""A rebuild's secondary indexes, built on two connections side by side once its shadow
tables are filled.

Building them is the one step of a rebuild where nothing else runs: one ``CREATE INDEX``
after another kept a single backend (one core) busy while the other waited (1.4-1.7 s of a
180,057-event rebuild's ~14 s). Two connections, the largest tables first, took 0.9-1.1 s
(alternated, same load). Each index commits on its own: the tables are shadows nobody reads
until the swap, and a rebuild that fails leaves them to be dropped by the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.store import PostgresViewStore

# Two: PostgreSQL's own parallel index build already helps the largest table, and the
# machines this runs on have two cores.
CONNECTIONS = 2


def build_side_by_side(store: PostgresViewStore, statements: Sequence[tuple[str, str]],
                       connections: int = CONNECTIONS) -> None:
    """Run ``(table name, CREATE INDEX …)`` pairs on ``connections`` connections (the
    store's own among them), the largest tables' first; the first failure is raised."""
    sizes = dict(store.query(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = ?", (store.schema,)))
    todo = iter(sorted(statements, key=lambda s: -sizes.get(s[0], 0)))
    lock = threading.Lock()
    errors: list[BaseException] = []
    helpers = [store.clone() for _ in range(min(connections, len(statements)) - 1)]

    def work(conn) -> None:
        while not errors:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            try:
                conn.execute(item[1])
            except BaseException as error:  # raised by the caller's thread below
                errors.append(error)

    threads = [threading.Thread(target=work, args=(h.conn,), name="shadow-index")
               for h in helpers]
    try:
        for thread in threads:
            thread.start()
        work(store.conn)
    finally:
        for thread in threads:
            thread.join()
        for helper in helpers:
            helper.close()
    if errors:
        raise errors[0]
