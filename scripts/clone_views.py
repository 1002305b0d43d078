"""Copying the read models user by user, as ``clone_seed`` copies the events: a big seeded
log needs no rebuild over the whole of it (hours here at 10 million events).

The first two users (clones of the template like every other) are seeded alone and every
projection rebuilt over that small log; their rows are then the templates of the read
models: the first user's for every user another follows (a ledger settles a user's last
candle step when the next user's first event comes), the second's for the last. For every
further user, in the transaction that copies its events, each row that belongs to
it (a key naming one of its ids, or a log position) is written again with the same ids
renamed as its events' were, and every log position (a column ``position``) moved to where
that user's event landed. Rows whose key names nothing of a user (the marks of a pair) are
the same for every clone and stay as the first users'. The audit log (one row per event,
hash-chained over the whole log, users one after another) is continued: each copied row
gets its event's position, recorded time and the chain's next hash, computed as
``projections.audit`` does from the stored bytes just written. At the end each projection's
tracking position is set to the log's head, as a rebuild would leave it.

The seed is checked against a full rebuild of the same log, table by table, row for row
(tests/integration/test_clone_views.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

POSITION = "position"  # the columns holding a log position (projections' own name for it)
AUDIT = "audit_log"


def recorded_text(moment: Any) -> str:
    """A ``recorded_at`` as the projections' log reader gives it (UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class TableTemplate:
    """One table's rows of one seeded user, cut at the ids they name (each id as the
    template's, before any renaming) and at their log positions. A row is the user's when
    its key names one of the user's ids or events; rows of other users are left out, and
    rows whose key names no user (the marks of a pair) are the same for every clone."""

    def __init__(self, name: str, columns: Sequence[str], key: Sequence[str],
                 rows: list[tuple], to_template: dict[str, int], positions: dict[int, int]):
        self.name, self.columns = name, tuple(columns)
        self.key_at = [self.columns.index(k) for k in key]
        self.position_at = {i for i, c in enumerate(self.columns) if c == POSITION}
        self.rows: list[list[Any]] = []
        for row in rows:
            cells = self._cut(row, to_template, positions)
            if cells is not None and any(cells[i][0] != "c" for i in self.key_at):
                self.rows.append(cells)

    def _cut(self, row: tuple, to_template: dict[str, int], positions: dict[int, int]
             ) -> list[tuple] | None:
        """The row's cells: ("c", value), ("p", index of the user's event) or ("t", texts,
        ids between them as places in a user's spellings); None for a row naming another
        user's event."""
        from clone_seed import UUID_TEXT_STR

        cells: list[tuple] = []
        for i, value in enumerate(row):
            if i in self.position_at and value is not None:
                at = positions.get(value)
                if at is None:
                    return None
                cells.append(("p", at))
            elif isinstance(value, str) and UUID_TEXT_STR.search(value):
                parts, slots, last = [], [], 0
                for match in UUID_TEXT_STR.finditer(value):
                    found = to_template.get(match.group())
                    if found is None:  # not an id of the user (e.g. half a hash)
                        continue
                    parts.append(value[last:match.start()])
                    slots.append(found)
                    last = match.end()
                parts.append(value[last:])
                cells.append(("t", parts, slots) if slots else ("c", value))
            else:
                cells.append(("c", value))
        return cells

    def rows_for(self, spelled: list[str], positions: list[int]) -> list[list[Any]]:
        """The rows for one user: ``spelled`` its ids (``Cloner.spellings``),
        ``positions[i]`` where the copy of the template user's ``i``-th event landed."""
        out = []
        for cells in self.rows:
            values = []
            for cell in cells:
                kind = cell[0]
                if kind == "c":
                    values.append(cell[1])
                elif kind == "p":
                    values.append(positions[cell[1]])
                else:
                    _, parts, slots = cell
                    pieces = [parts[0]]
                    for slot, part in zip(slots, parts[1:], strict=True):
                        pieces.append(spelled[slot])
                        pieces.append(part)
                    values.append("".join(pieces))
            out.append(values)
        return out


class ViewCopier:
    """Every projection's rows of one seeded user, written again for other users."""

    def __init__(self, conn: Any, schema: str, events_table: str, spelled: list[str],
                 positions: list[int]):
        from projections.registry import PROJECTIONS

        self.schema, self.events_table = schema, events_table
        # The user's ids (both spellings) to their places in any user's spellings.
        to_template = {text: slot for slot, text in enumerate(spelled)}
        index = {p: i for i, p in enumerate(positions)}
        self.tables: list[TableTemplate] = []
        for cls in PROJECTIONS.values():
            for t in cls.tables:
                rows = conn.execute(
                    f'SELECT {", ".join(t.column_names)} FROM "{schema}"."{t.name}"'
                ).fetchall()
                self.tables.append(TableTemplate(t.name, t.column_names, t.key, rows,
                                                 to_template, index))
        last = conn.execute(f'SELECT hash FROM "{schema}"."{AUDIT}" ORDER BY position DESC '
                            "LIMIT 1").fetchone()
        self.previous = bytes.fromhex(last[0]) if last else bytes(32)

    def copy_user(self, cursor: Any, spelled: list[str], copied: list[tuple], after: int,
                  recorded: datetime) -> int:
        """Write one user's rows (``copied``: its events as just written, after log position
        ``after``, ``recorded`` then) in the cursor's transaction; returns rows written."""
        positions = [p for (p,) in cursor.execute(
            f'SELECT notification_id FROM "{self.schema}"."{self.events_table}" '
            "WHERE notification_id > %s ORDER BY notification_id", (after,)).fetchall()]
        written = 0
        for t in self.tables:
            rows = t.rows_for(spelled, positions)
            if t.name == AUDIT:
                self._chain(t, rows, copied, positions, recorded_text(recorded))
            self._write(cursor, t, rows)
            written += len(rows)
        return written

    def _write(self, cursor: Any, t: TableTemplate, rows: list[list[Any]]) -> None:
        with cursor.copy(f'COPY "{self.schema}"."{t.name}" ({", ".join(t.columns)}) '
                         "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _chain(self, t: TableTemplate, rows: list[list[Any]], copied: list[tuple],
               positions: list[int], recorded: str) -> None:
        """The audit rows' recorded times and hashes, chained on from the log before them
        (as ``projections.audit.AuditLog.apply`` hashes: position, id, version, topic and
        the stored bytes)."""
        at = {c: i for i, c in enumerate(t.columns)}
        by_position = {row[at["position"]]: row for row in rows}
        previous = self.previous
        recorded_at, hash_at = at["recorded_at"], at["hash"]
        for (oid, version, topic, state), position in zip(copied, positions, strict=True):
            head = f"{position}\n{oid}\n{version}\n{topic}\n".encode()
            previous = hashlib.sha256(previous + head + state).digest()
            row = by_position[position]
            row[recorded_at] = recorded
            row[hash_at] = previous.hex()
        self.previous = previous

    def replace(self, cursor: Any, other: ViewCopier, spelled: list[str],
                positions: list[int]) -> None:
        """A seeded user's rows as ``other`` has them replaced by this copier's (the audit
        log, the same in both, is left as it is)."""
        for mine, theirs in zip(self.tables, other.tables, strict=True):
            if mine.name == AUDIT:
                continue
            key = [mine.columns[i] for i in mine.key_at]
            where = " AND ".join(f"{k} = %s" for k in key)
            cursor.executemany(f'DELETE FROM "{self.schema}"."{mine.name}" WHERE {where}',
                               [[row[i] for i in mine.key_at]
                                for row in theirs.rows_for(spelled, positions)])
            self._write(cursor, mine, mine.rows_for(spelled, positions))

def seed_with_views(url: str, users: int, cloner: Any) -> int:
    """``users`` clones of ``cloner``'s template and their read models; returns the events
    written. The first two users are seeded and rebuilt: the first one's rows are what every
    user followed by another has (a ledger settles a user's last step when the next user's
    first event comes), the second one's what the last user of the log has."""
    from clone_seed import copy_users, log, rebuild_projections

    written = copy_users(url, min(users, 2), [cloner])
    log(f"the first users' read models rebuilt in {rebuild_projections(url):.1f} s")
    if users > 2:
        followed, last = _templates(url, cloner)
        written += copy_users(url, users - 1, [cloner], first=2, views=followed)
        last.previous = followed.previous  # the audit chain goes on
        written += copy_users(url, users, [cloner], first=users - 1, views=last,
                              progress=lambda _: None)
    return written


def _templates(url: str, cloner: Any) -> tuple[ViewCopier, ViewCopier]:
    """The first user's rows and the second's (the log's last so far), the second user's
    rows then made those of a user followed by another (as the first's)."""
    from psycopg.rows import tuple_row

    from application.bootstrap import open_trading
    from application.settings import parse_database_url

    schema = parse_database_url(url).env.get("POSTGRES_SCHEMA", "public")
    trading = open_trading(url)
    try:
        table = trading.recorder.events_table_name
        with trading.recorder.datastore.get_connection() as conn:
            with conn.cursor(row_factory=tuple_row) as cursor:  # the store's are dicts
                positions = [p for (p,) in cursor.execute(
                    f'SELECT notification_id FROM "{schema}"."{table}" '
                    "ORDER BY notification_id").fetchall()]
                n = len(cloner.rows)
                if len(positions) != 2 * n:
                    raise RuntimeError(f"the log holds {len(positions)} events, two users "
                                       f"{2 * n}: their read models cannot be cut out")
                first, second = cloner.spellings(0), cloner.spellings(1)
                followed = ViewCopier(cursor, schema, table, first, positions[:n])
                last = ViewCopier(cursor, schema, table, second, positions[n:])
                followed.replace(cursor, last, second, positions[n:])
            conn.commit()
        return followed, last
    finally:
        trading.close()


def finish(url: str) -> int:
    """Every projection's tracking position at the log's head (their rows hold it all, as
    a rebuild would leave them); returns the head."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    schema = env.get("POSTGRES_SCHEMA", "public")
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        head = conn.execute(f'SELECT coalesce(max(notification_id), 0) FROM "{schema}".'
                            '"trading_events"').fetchone()[0]
        conn.execute(f'UPDATE "{schema}"."projection_tracking" SET position = %s', (head,))
    return head
