"""Reading the events of a few topics from the PostgreSQL log at the cost of what is found
(``adapters/event_store/postgres.py``'s application recorder; eventsourcing 9.5.6). A fast
path through the library's table: off, the library's ``select_notifications`` answers
(``application.library_seam``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing import postgres
from eventsourcing.persistence import InterfaceError, Notification, OperationalError
from eventsourcing.utils import retry
from psycopg import sql


class TopicReads:
    datastore: postgres.PostgresDatastore
    events_table_name: str
    # False: the library's own read (``TRADETAPE_LIBRARY_PATHS=1`` or another eventsourcing
    # version; set from ``application.library_seam`` when the recorder is made)
    fast_topic_reads = True

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Any]:
        """The library's read (same rows, same order), planned for the topics asked.

        WHY: the library prepares this statement (``prepare=True``), and after five runs on
        a connection PostgreSQL may keep one generic plan for it, made without knowing the
        topics: "walk the log by position until LIMIT rows pass the filter", good for
        common topics, a walk of the whole log for rare ones (a start's positions and
        exits: none found in 3.3 s on 1.7 million events; it happened at 10 million, where
        the commoner reads before it cost more than that plan seems to). Sent
        unprepared, each read is planned for its own topics: a rare one is found through
        ``(topic, notification_id)`` and costs what it finds."""
        if not topics or not self.fast_topic_reads:
            return super().select_notifications(  # type: ignore[misc]
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start)
        where, params = [], []
        if start is not None:
            where.append("notification_id >= %s" if inclusive_of_start
                         else "notification_id > %s")
            params.append(start)
        if stop is not None:
            where.append("notification_id <= %s")
            params.append(stop)
        where.append("topic = ANY(%s)")
        params += [list(topics), limit]
        statement = sql.SQL("SELECT notification_id, originator_id, originator_version, "
                            "topic, state FROM {} WHERE " + " AND ".join(where)
                            + " ORDER BY notification_id LIMIT %s").format(
            sql.Identifier(self.datastore.schema, self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=False)
            return [Notification(id=row["notification_id"], originator_id=row["originator_id"],
                                 originator_version=row["originator_version"],
                                 topic=row["topic"], state=bytes(row["state"]))
                    for row in curs.fetchall()]
