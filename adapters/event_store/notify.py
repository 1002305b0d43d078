"""Learning of new events from other processes: PostgreSQL LISTEN on the channel the event
store NOTIFYs in every append (the ``eventsourcing`` library's, one per events table).
A thread with a connection of its own calls ``on_events()`` once per burst of
notifications (several appends close together are one call), and also every ``poll``
seconds, so nothing is missed while the connection is being made again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

from application.settings import Database, _connect_kwargs

log = logging.getLogger("tradetape.notify")
FIRST_RETRY = 0.5  # seconds before connecting again, doubled up to ``poll``


class EventListener:
    def __init__(self, database: Database, channel: str, on_events: Callable[[], None],
                 poll: float = 5.0):
        self.kwargs, self.channel = _connect_kwargs(database.env), channel
        self.on_events, self.poll = on_events, poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tradetape-notify",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        delay, failing = FIRST_RETRY, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self.kwargs, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    if failing:
                        log.warning("LISTEN %s: connected again", self.channel)
                    delay, failing = FIRST_RETRY, False
                    self._call()  # what was appended before LISTEN took effect
                    self._listen(conn)
            except psycopg.Error as error:
                # Said once per outage (a server out of connections refused it every
                # second, a log line each time); meanwhile the log is looked at each try
                if not failing:
                    log.warning("LISTEN %s: %s: %s; trying again every %g-%g s", self.channel,
                                type(error).__name__, _one_line(error), FIRST_RETRY,
                                self.poll)
                failing = True
                self._call()
                self._stop.wait(delay)
                delay = min(self.poll, delay * 2)

    def _listen(self, conn: psycopg.Connection) -> None:
        waited = 0.0
        while not self._stop.is_set():
            burst = list(conn.notifies(timeout=0.5, stop_after=1))
            waited += 0.5
            if burst or waited >= self.poll:
                waited = 0.0
                self._call()

    def _call(self) -> None:
        try:
            self.on_events()
        except Exception as error:  # a subscriber's fault never stops the listening
            log.warning("on new events: %s: %s", type(error).__name__, error)


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())
