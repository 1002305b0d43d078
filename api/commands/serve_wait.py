"""A role process (``serve --role api|engine|projections``) whose PostgreSQL server refuses
it at start waits for the server instead of exiting.

Such processes share one server with others; under churn (kill drills, a supervisor
restarting several at once, other tenants) the server answers "too many clients" for a
while, and a process that exits with ``DATABASE_ERROR`` only to be started again by its
supervisor makes a loop of failing starts. Here it says so once, on one line, then tries
again after 0.5, 1, 2, 4 ... up to 15 s, as long as the refusal lasts. A setting that can
never work (a wrong password or database name) still exits at once.

Each new try is the same command run afresh in the same process (``exec``): nothing a failed
try had half opened (pools, their threads, the connections they did get) outlives it, so a
waiting process holds no connection of the server it waits for.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Internal, set across the exec: how many tries failed so far (never set by users).
ATTEMPT_ENV = "TRADETAPE_START_ATTEMPT"
FIRST_DELAY, LONGEST_DELAY = 0.5, 15.0
# What a server (or the way to it) says while it cannot take one more client for now.
PASSING = (
    "too many clients",
    "remaining connection slots are reserved",
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery",
    "couldn't get a connection",
    "server closed the connection unexpectedly",
    "timeout expired",
)


def passing_refusal(error: BaseException) -> str | None:
    """The server's words when ``error`` is a refusal that should pass, else None."""
    from api.commands.common import _from_a_database
    from domain.errors import DomainError

    unavailable = isinstance(error, DomainError) and error.code == "DATABASE_UNAVAILABLE"
    if not (unavailable or _from_a_database(error)):
        return None
    said = error.message if unavailable else str(error)
    text = " ".join(line.strip() for line in said.splitlines() if line.strip())
    return text if any(marker in text.lower() for marker in PASSING) else None


def started_or_waiting(start: Callable[[], T]) -> T:
    """``start()``'s result; on a refusal that should pass, this command again after a
    pause (never returns then)."""
    attempt = int(os.environ.pop(ATTEMPT_ENV, "") or 0)  # not handed down to children
    if attempt:  # the pause before this try, in the fresh process: nothing is open yet
        time.sleep(min(LONGEST_DELAY, FIRST_DELAY * 2 ** (attempt - 1)))
    try:
        return start()
    except Exception as error:
        reason = passing_refusal(error)
        if reason is None:
            raise
        if attempt == 0:
            print(
                f"warning: DATABASE_UNAVAILABLE: {reason}; starting again every "
                f"{FIRST_DELAY:g}-{LONGEST_DELAY:g} s until the server accepts",
                file=sys.stderr,
                flush=True,
            )
        # At once, from inside this block: what the failed try half opened is still
        # referenced by the error, so none of its pools is collected meanwhile (closed from
        # its own worker thread, the library prints an ignored RuntimeError).
        gc.disable()
        sys.stdout.flush()
        os.environ[ATTEMPT_ENV] = str(attempt + 1)
        os.execv(sys.executable, sys.orig_argv)
    raise AssertionError("unreachable: exec returned")
