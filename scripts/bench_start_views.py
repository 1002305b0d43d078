"""The read models of a log seeded by ``scripts/bench_start.py``, copied rather than rebuilt.

Every user of that log holds a copy of one user's events with its ids renamed, one user
after another. Rebuilding the projections over the whole log costs far more than copying
it (the P/L books re-mark every open deal of the pair at each fill: at 10,000 bots a
rebuild ran for 17 minutes), so the template user's views are made by a rebuild of that
user's events alone, and every other user's rows are copied from them the way the events
were: every id renamed the same way, every log position moved by where that user's events
start, the audit chain hashed on over the copied events (``projections.audit.chain``).
Rows that name no id of a user (the last price of each pair) are the same for every user
and kept once. What this gives equals a rebuild of the whole log, table by table
(tests/integration/test_bench_start_views.py); a view this copy cannot make (a ranked
leaderboard row: ranks are across users) is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

POSITION = "position"
AUDIT_LOG = "audit_log"
LEADERBOARD = "leaderboard"
TRACKING = "projection_tracking"


class SeedViewError(RuntimeError):
    pass


def view_tables() -> list[Any]:
    """Every projection's tables (``projections.tables.Table``)."""
    from projections.registry import PROJECTIONS

    return [table for cls in PROJECTIONS.values() for table in cls.tables]


class SeedViews:
    """The rebuilt views of the first users (one, or two: see ``_template_views`` in
    bench_start.py), each row cut at its ids and filed under the user it names; rows that
    name no user's id are kept once. Reading them empties the views: ``write_user`` then
    writes each user's rows again, from the template that user follows."""

    def __init__(self, cursor, schema: str, cloner, events: int, users: int,
                 renamers: list[Callable]):
        from bench_start import _view_renamer

        self.schema, self.events, self.users = schema, events, users
        self._view_renamer = _view_renamer
        self.first_ids: list[dict] = []  # per template user: its ids -> the template's
        owner_of: dict = {}
        for j, new in enumerate(renamers):
            for _ in cloner.clone(j, new):  # names every id the user's events hold
                pass
            self.first_ids.append({first: old for old, first in new.names.items()})
            owner_of.update(dict.fromkeys(self.first_ids[j], j))
        cursor.execute(f'SELECT recorded_at FROM "{schema}".trading_events '
                       "ORDER BY notification_id")
        times = [row[0] for row in cursor.fetchall()]
        self.recorded = [times[j * events:(j + 1) * events] for j in range(len(renamers))]
        self.tables: list[tuple[Any, list[str], list[list[list]]]] = []
        for table in view_tables():
            names = [name for name, _ in table.columns]
            rows: list[list[list]] = [[] for _ in renamers]
            shared = []
            for row in self._read(cursor, table, names):
                if table.name == LEADERBOARD and row[names.index("rank")] is not None:
                    raise SeedViewError("a ranked leaderboard row cannot be copied (ranks are "
                                        "across users): seed with --rebuild")
                values = [cloner.cut_text(v) if isinstance(v, str) and name != "hash" else v
                          for name, v in zip(names, row, strict=True)]  # hash: hex, no id
                named = [v for v in values if isinstance(v, tuple)]
                if named:
                    rows[owner_of[named[0][1][0][0]]].append(values)
                else:
                    shared.append(list(row))
            cursor.execute(f'TRUNCATE "{schema}"."{table.name}"')
            self._copy(cursor, table, names, shared)
            self.tables.append((table, names, rows))

    def _read(self, cursor, table, names: list[str]) -> list[tuple]:
        quoted = ", ".join(f'"{n}"' for n in names)
        order = f' ORDER BY "{POSITION}"' if POSITION in names else ""
        cursor.execute(f'SELECT {quoted} FROM "{self.schema}"."{table.name}"{order}')
        return cursor.fetchall()

    def template_of(self, k: int) -> int:
        """The last user follows the second template user (none came after either)."""
        return 1 if k == self.users - 1 and self.users > 1 else 0

    def write_user(self, cursor, log_copy, k: int, new: Callable, events: list[tuple],
                   previous: bytes | None, *, with_events: bool) -> bytes:
        """User ``k``'s events (``with_events``; recorded when its template's were) and
        views; its events start after position ``k * events``. The audit chain goes on
        from ``previous`` (None: the log's start); returns its last hash."""
        j = self.template_of(k)
        if with_events:
            log_copy.write(cursor, events, self.recorded[j])
        rename = self._view_renamer(new, self.first_ids[j])
        offset = (k - j) * self.events
        previous = bytes(32) if previous is None else previous
        for table, names, rows in self.tables:
            if table.name == AUDIT_LOG:
                previous = self._copy_audit(cursor, table, names, rows[j], rename, offset,
                                            events, previous)
                continue
            at = names.index(POSITION) if POSITION in names else None
            self._copy(cursor, table, names, (
                [(v + offset if i == at and v is not None else
                  rename(v) if isinstance(v, tuple) else v) for i, v in enumerate(row)]
                for row in rows[j]))
        return previous

    def _copy_audit(self, cursor, table, names, template, rename, offset, events,
                    previous) -> bytes:
        from types import SimpleNamespace

        from projections.audit import chain

        at, hashed = names.index(POSITION), names.index("hash")
        if len(template) != len(events):
            raise SeedViewError(f"the template's audit log has {len(template)} rows "
                                f"for {len(events)} events")
        out = []
        for row, (oid, version, topic, state) in zip(template, events, strict=True):
            values = [rename(v) if isinstance(v, tuple) else v for v in row]
            values[at] = position = row[at] + offset
            # what chain() reads of a fact: the event as stored, at its position
            previous = chain(previous, SimpleNamespace(position=position, oid=str(oid),
                                                       version=version, topic=topic,
                                                       stored=state))
            values[hashed] = previous.hex()
            out.append(values)
        self._copy(cursor, table, names, out)
        return previous

    def _copy(self, cursor, table, names: list[str], rows: Iterable[list]) -> None:
        quoted = ", ".join(f'"{n}"' for n in names)
        with cursor.copy(f'COPY "{self.schema}"."{table.name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)


def move_tracking(cursor, schema: str, head: int) -> None:
    """Every projection's views now hold the log up to ``head``."""
    cursor.execute(f'UPDATE "{schema}"."{TRACKING}" SET "{POSITION}" = %s', (head,))
