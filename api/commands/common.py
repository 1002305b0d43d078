"""What every command shares: the --database option, error reporting, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A problem the user can fix; printed as ``error: CODE: message`` with no traceback."""

    def __init__(self, code: str, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.code, self.message, self.exit_code = code, message, exit_code


def add_database_option(parser: argparse.ArgumentParser, flag: str = "--database") -> None:
    parser.add_argument(
        flag,
        metavar="URL",
        default=None,
        help="memory | sqlite:///PATH | postgresql://USER@HOST:PORT/DB "
        "(default: $TRADETAPE_DATABASE_URL, else sqlite:///var/tradetape.sqlite)",
    )


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, default=json_default, indent=2)
    sys.stdout.write("\n")


def parse_time(text: str, option: str = "--as-of"):
    """ISO 8601 (a date, or a date and time); a time without a zone is UTC."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            "INVALID_TIME", f"{option} {text!r} is not an ISO 8601 time, e.g. "
            "2024-03-01T12:30:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_a_database(error: Exception) -> bool:
    """Raised by the event store library or a database driver (told by where its class
    lives, so no driver is imported to ask)."""
    return any(cls.__module__ == "eventsourcing.persistence"
               or cls.__module__.partition(".")[0] in ("sqlite3", "psycopg", "psycopg_pool")
               for cls in type(error).__mro__)


def _database_of(args: argparse.Namespace) -> str:
    """The store a command was working on, as it may be printed."""
    from application.settings import parse_database_url

    url = getattr(args, "store", None) or getattr(args, "database", None)
    try:
        return parse_database_url(url).display
    except Exception:  # the error being reported matters more than this one
        return "the database"


def batch_gc():
    """For a one-shot batch command: a year's backtest leaves ~8,000 objects in cycles, so
    the collector is paused for the run and what was alive before is frozen out of it."""
    from application.collector import collector_paused

    return collector_paused(freeze_existing=True)


def run_reporting_errors(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from domain.errors import DomainError, InvalidConfigError

    try:
        return run(args)
    except CommandError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return error.exit_code
    except InvalidConfigError as error:
        for violation in error.violations:
            print(f"error: {violation}", file=sys.stderr)
        return EXIT_USAGE
    except DomainError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into `head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the final flush has somewhere to go
        return EXIT_OK
    except Exception as error:  # a store that fails under a command: said, not a traceback
        if not _from_a_database(error):
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: DATABASE_ERROR: {_database_of(args)}: "
              f"{message or type(error).__name__}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def print_table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Rows as a table on stdout: ``-`` for a missing value."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in columns:
        table.add_column(column.replace("_", " "), no_wrap=True)
    for row in rows:
        table.add_row(*(Text("-" if row.get(c) is None else str(row.get(c)))
                        for c in columns))
    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough that nothing is folded
        console = Console(width=200)
    console.print(table)
