"""Whether anything was written since the read version was last read (PostgreSQL): LISTEN
on the log's channel (every append NOTIFYs it, in its transaction) and the views' (every
projections batch and rebuild NOTIFYs it), on a connection of the event loop's own.

Under a live run nearly every request waited for a read of its own of the read version
(the log's head and the projections' positions): about 40% of a cached answer's time on
the event loop, although the engine and the projections commit only some 20 times a second.
:meth:`ChangeWatch.stamp` says how many notifications (and local writes, :meth:`written`)
were seen so far, after taking in whatever already reached the connection's socket, without
waiting; a snapshot read after a stamp is still the database's as long as the stamp has
not moved (``OwnerVersions.snapshot_on_loop`` keeps it meanwhile, at most ``MAX_REUSE``
seconds). None while not listening (connecting, or the connection lost): then every request
reads, as before. :meth:`ChangeWatch.log_stamp` counts the log's channel alone: while it
holds, the log's head is kept and only the views' positions are read again.

The connection is driven through libpq directly (its socket watched by the loop, input
consumed without blocking), never through psycopg's own waits, so that taking in the
notifications at a stamp cannot cut into a wait of psycopg's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger("tradetape.graphql")
RETRY_SECONDS = 1.0  # between attempts to connect (meanwhile every request reads)


class ChangeWatch:
    def __init__(self, connect_kwargs: dict[str, Any], channels: tuple[str, ...]):
        self.connect_kwargs, self.channels = connect_kwargs, channels
        self.count = 0  # notifications and local writes seen; +1 at each (re)connection
        self.log_count = 0  # the same, the views' notifications left out
        self._log_channel = channels[0].encode() if channels else b""
        self.conn: Any = None
        self.fileno = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listening = False
        self._starting: asyncio.Task | None = None
        self._retry_at = 0.0  # (the loop's clock) no new connection tried before it
        self._failing = False

    def stamp(self) -> int | None:
        """The count now (whatever reached the socket taken in first), None when not
        listening (a connection is then made in the background)."""
        if not self.listening:
            self._start()
            return None
        self._take_in()
        return self.count if self.listening else None

    def log_stamp(self) -> int | None:
        """``stamp`` for the log alone (its channel's notifications, local writes and
        reconnections): equal log stamps, nothing appended in between that was heard of,
        whatever the views committed."""
        return None if self.stamp() is None else self.log_count

    def written(self) -> None:
        """Something may have been written by this process (a mutation answered): the
        next stamp differs, whether or not its NOTIFY arrived yet."""
        self._moved()

    def _moved(self) -> None:
        self.count += 1
        self.log_count += 1

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if ((self._starting is None or self._starting.done())
                and loop.time() >= self._retry_at):
            self._retry_at = loop.time() + RETRY_SECONDS  # no storm of connections
            self._starting = loop.create_task(self._connect())

    async def _connect(self) -> None:
        import psycopg
        from psycopg import sql

        conn = None
        try:
            conn = await psycopg.AsyncConnection.connect(**self.connect_kwargs,
                                                         autocommit=True)
            for channel in self.channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except (psycopg.Error, OSError) as error:
            if conn is not None and not conn.closed:
                conn.pgconn.finish()
            if not self._failing:  # said once per outage
                log.warning("graphql LISTEN: %s: %s (the read version is read every time "
                            "until it listens again)", type(error).__name__, error)
            self._failing = True
            return
        self._failing = False
        self.close()
        self.conn, self.loop = conn, asyncio.get_running_loop()
        self.fileno = conn.pgconn.socket
        self.loop.add_reader(self.fileno, self._take_in)
        self._moved()  # a snapshot read before this moment was not watched
        self.listening = True

    def _take_in(self) -> None:
        conn = self.conn
        if conn is None:
            return
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except Exception:  # the connection is gone: every request reads until another
            self.close()
            return
        while (notify := pgconn.notifies()) is not None:
            self.count += 1
            if notify.relname == self._log_channel:
                self.log_count += 1
        if conn.closed or pgconn.status != 0:  # CONNECTION_OK
            self.close()

    def close(self) -> None:
        """Stops listening (another connection is made at the next stamp)."""
        conn, self.conn, self.listening = self.conn, None, False
        if conn is None:
            return
        self._moved()
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(Exception):  # (a loop being closed meanwhile)
                self.loop.remove_reader(self.fileno)
        if not conn.closed:
            conn.pgconn.finish()
