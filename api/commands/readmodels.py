"""What the read-model commands (projections, pnl, balances, audit) share: opening the event
store with its views, reading a time, telling a user that a view was never built, the
options of time travel and of backtests."""

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


def add_time_travel_options(parser) -> None:
    """``--as-of`` (recorded time), ``--market-as-of`` (the events' own time) and
    ``--include-backtests``, as pnl and balances take them."""
    parser.add_argument(
        "--as-of", metavar="ISO-TIME",
        help="as the log stood at this time: the events recorded by then (a time without "
             "zone is UTC; not in the future)")
    parser.add_argument(
        "--market-as-of", metavar="ISO-TIME",
        help="only the events whose own time (market time, for a backtest) is at or before "
             "this; with --as-of, of the events recorded by then")
    parser.add_argument(
        "--include-backtests", action="store_true",
        help="count stored backtest runs too (owned by the backtest, not by a user: left "
             "out unless asked, or unless --owner backtest / --bot names one)")


def time_travel(args) -> tuple[datetime | None, datetime | None]:
    """``(as_of, market_as_of)`` from the options, each refused when in the future."""
    as_of = past_time(args.as_of) if args.as_of else None
    market = past_time(args.market_as_of, "--market-as-of") if args.market_as_of else None
    return as_of, market


def backtests_left_out(args) -> tuple[str, ...]:
    """The owners a user-facing report leaves out: backtest runs, unless asked for."""
    from domain.backtests import BACKTEST_OWNER

    asked = args.include_backtests or getattr(args, "bot", None) or args.owner
    return () if asked else (BACKTEST_OWNER,)


def backtest_bot(database: str | None, run_id: str) -> str:
    """The bot of stored backtest run ``run_id`` (as ``backtest --json`` prints it)."""
    from uuid import UUID

    from domain.backtests import BacktestRun
    from domain.errors import NotFoundError

    try:
        key = UUID(run_id)
    except ValueError:
        raise CommandError("INVALID_ID", f"--backtest {run_id!r} is not a backtest run id "
                                         "(a UUID, as `backtest --json` prints it)") from None
    with open_views(database) as views:
        try:
            return str(views.app.load(key, BacktestRun).bot_id)
        except NotFoundError:
            raise CommandError("UNKNOWN_BACKTEST", f"{views.database.display} holds no "
                                                   f"backtest run {key}") from None


def past_time(text: str, option: str = "--as-of") -> datetime:
    """An ISO 8601 time (see ``parse_time``) that is not in the future: a question about a
    moment that has not come yet has no answer (``AS_OF_IN_FUTURE``, ``SINCE_IN_FUTURE``)."""
    from datetime import UTC

    from api.commands.common import parse_time

    moment = parse_time(text, option)
    now = datetime.now(UTC)
    if moment > now:
        code = "SINCE_IN_FUTURE" if option == "--since" else "AS_OF_IN_FUTURE"
        raise CommandError(code, f"{option} {moment.isoformat()} is in the future "
                                 f"(now is {now.isoformat(timespec='seconds')})")
    return moment


def report_now_or_as_of(database: str | None, projection, as_of: datetime | None, make_report,
                        market_as_of: datetime | None = None, also: tuple = ()
                        ) -> tuple[Any, int, int]:
    """``make_report(store)`` on ``projection``'s live view, or on a throwaway view of the
    events recorded by ``as_of`` and/or whose own time is by ``market_as_of`` (made by
    ``projection`` and the projections ``also`` whose tables the report reads too). Returns
    ``(report, position, head)``: ``position`` is the log position the answer reflects."""
    from projections.runner import view_as_of

    with open_views(database) as views:
        head = views.app.recorder.max_notification_id() or 0
        if as_of is None and market_as_of is None:
            position = views.tracking(projection.name).position
            return make_report(views.store), position, head
        view = view_as_of(views.app, [*also, projection], as_of, market=market_as_of)
        try:
            return make_report(view.store), view.position, max(head, view.position)
        finally:
            view.store.close()
