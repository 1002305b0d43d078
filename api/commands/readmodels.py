"""What the read-model commands (projections, pnl, balances, audit) share: opening the event
store with its views, reading a time, telling a user that a view was never built."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.commands.common import EXIT_FAILED, CommandError


@dataclass
class Views:
    app: Any  # application.trading.Trading
    store: Any  # projections.store.ViewStore
    database: Any  # application.settings.Database

    def tracking(self, name: str):
        """The projection's tracking row; a CommandError if the view was never built."""
        row = self.store.tracking().get(name)
        if row is None:
            raise CommandError(
                "VIEW_NOT_BUILT",
                f"the {name} view of {self.database.display} has not been built: run "
                f"`tradetape projections rebuild {name}` (or `projections run {name}`)")
        return row


@contextmanager
def open_views(url: str | None) -> Iterator[Views]:
    from eventsourcing.persistence import PersistenceError

    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.store import open_view_store

    database = parse_database_url(url)
    app = store = None
    try:
        app = open_trading(url)
        store = open_view_store(database)
    except (PersistenceError, OSError, ImportError) as error:
        if app is not None:
            app.close()
        raise CommandError("DATABASE_UNAVAILABLE", f"cannot open {database.display}: {error}",
                           exit_code=EXIT_FAILED) from None
    except Exception as error:  # psycopg's OperationalError and friends
        if app is not None:
            app.close()
        if type(error).__module__.startswith("psycopg"):
            raise CommandError("DATABASE_UNAVAILABLE",
                               f"cannot open {database.display}: {error}",
                               exit_code=EXIT_FAILED) from None
        raise
    try:
        yield Views(app, store, database)
    finally:
        store.close()
        app.close()


def projection_error(error: Exception) -> CommandError:
    """A ProjectionError as the command line reports it: a name the user mistyped is a usage
    error (exit 2), anything else a failure (exit 1)."""
    from api.commands.common import EXIT_USAGE

    code = getattr(error, "code", "PROJECTION_ERROR")
    return CommandError(code, getattr(error, "message", str(error)),
                        exit_code=EXIT_USAGE if code == "UNKNOWN_PROJECTION" else EXIT_FAILED)


def report_now_or_as_of(database: str | None, projection, as_of: datetime | None, make_report
                        ) -> tuple[Any, int, int]:
    """``make_report(store)`` on ``projection``'s live view, or on a throwaway view of the
    events up to ``as_of``. Returns ``(report, position, head)``."""
    from projections.runner import view_as_of

    with open_views(database) as views:
        head = views.app.recorder.max_notification_id() or 0
        if as_of is None:
            position = views.tracking(projection.name).position
            return make_report(views.store), position, head
        store = view_as_of(views.app, [projection], as_of)
        try:
            return make_report(store), head, head
        finally:
            store.close()
