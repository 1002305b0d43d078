"""The listener of other processes' appends says once that it cannot listen (a server out
of connections, a closed port), not once a second, and keeps looking at the log meanwhile."""

from __future__ import annotations

import logging
import socket
import threading
import time

from adapters.event_store.notify import EventListener
from application.settings import parse_database_url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_listener_that_cannot_connect_says_so_once_and_still_looks(caplog):
    database = parse_database_url(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
    looked = threading.Semaphore(0)
    listener = EventListener(database, "trading_events", looked.release, poll=1.0)
    with caplog.at_level(logging.WARNING, logger="tradetape.notify"):
        listener.start()
        try:
            for _ in range(4):  # tries at 0, 0.5, 1.5 and 2.5 s: each looks at the log
                assert looked.acquire(timeout=30)
            time.sleep(1)
        finally:
            listener.stop()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    assert said[0].startswith("LISTEN trading_events: OperationalError: ")
    assert "refused" in said[0] and "trying again every 0.5-1 s" in said[0]
