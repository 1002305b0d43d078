"""tradetape events AGGREGATE_ID [--as-of ISO-TIME | --version N] [--json] [--database URL]

An aggregate's stored history and the state it had at a point in time, rebuilt from the
events alone (the audit view: who decided what, when, as part of which request)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from api.commands.common import add_database_option

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from domain.recording import TradetapeAggregate

# What every event carries besides its own data; shown in columns of their own.
_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor",
     "correlation_id"}
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("aggregate_id", metavar="AGGREGATE_ID", help="id of a bot, deal or order")
    point = parser.add_mutually_exclusive_group()
    point.add_argument(
        "--as-of",
        metavar="ISO-TIME",
        help="show the state at this time (ISO 8601; a time without zone is UTC)",
    )
    point.add_argument(
        "--version", type=_positive_int, metavar="N", help="show the state after event N"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(parser)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import parse_time, print_json
    from application.settings import parse_database_url

    aggregate_id = _parse_id(args.aggregate_id)
    as_of = parse_time(args.as_of) if args.as_of is not None else None
    database = parse_database_url(args.database)
    history = _load_history(args.database, database.display, aggregate_id)
    kept = _keep(history, aggregate_id, as_of=as_of, version=args.version)
    aggregate = _project(kept)
    report = {
        "aggregate_id": str(aggregate_id),
        "aggregate_type": type(aggregate).__name__,
        "version": aggregate.version,
        "as_of": None if as_of is None else as_of.isoformat(),
        "events": [_event_row(event) for event in kept],
        "state": {k: _plain(v) for k, v in vars(aggregate).items() if not k.startswith("_")},
    }
    if args.json:
        print_json(report)
    else:
        _print_tables(report, total=len(history))
    return 0


def _parse_id(text: str) -> UUID:
    from uuid import UUID

    from api.commands.common import CommandError

    try:
        return UUID(text.strip())
    except ValueError:
        raise CommandError(
            "NOT_FOUND", f"no aggregate {text!r}: an id looks like 0b6e2f1c-…, a UUID"
        ) from None


def _load_history(url: str | None, display: str, aggregate_id: UUID) -> list[Any]:
    from eventsourcing.persistence import PersistenceError

    from api.commands.common import EXIT_FAILED, CommandError
    from application.bootstrap import open_trading

    app = None
    try:
        app = open_trading(url)
        history = list(app.events.get(aggregate_id))
    except (PersistenceError, OSError) as error:
        raise CommandError(
            "DATABASE_UNAVAILABLE", f"cannot read {display}: {error}", exit_code=EXIT_FAILED
        ) from None
    finally:
        if app is not None:
            app.close()
    if not history:
        raise CommandError("NOT_FOUND", f"no aggregate {aggregate_id} in {display}")
    return history


def _keep(
    history: list[Any], aggregate_id: UUID, *, as_of: datetime | None, version: int | None
) -> list[Any]:
    """The events up to the point asked for, always a prefix of the history."""
    from itertools import takewhile

    from api.commands.common import CommandError

    if version is not None:
        if version > len(history):
            raise CommandError(
                "NOT_FOUND",
                f"{aggregate_id} has {len(history)} events: there is no version {version}",
            )
        return history[:version]
    if as_of is None:
        return history
    kept = list(takewhile(lambda event: event.timestamp <= as_of, history))
    if not kept:
        raise CommandError(
            "NOT_FOUND",
            f"{aggregate_id} did not exist yet at {as_of.isoformat()} "
            f"(it was created at {history[0].timestamp.isoformat()})",
        )
    return kept


def _project(events: list[Any]) -> TradetapeAggregate:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert aggregate is not None
    return aggregate


def _event_row(event: Any) -> dict[str, Any]:
    return {
        "version": event.originator_version,
        "timestamp": event.timestamp.isoformat(),
        "type": type(event).__name__,
        "actor": getattr(event, "actor", None),
        "correlation_id": getattr(event, "correlation_id", None),
        "data": {k: _plain(v) for k, v in vars(event).items() if k not in _ENVELOPE},
    }


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as strings (scale kept), enums as their values, value objects as
    dicts."""
    from dataclasses import fields, is_dataclass
    from decimal import Decimal
    from enum import Enum
    from uuid import UUID

    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if callable(getattr(value, "recorded", None)):  # a configuration: what its events hold
        return _plain(value.recorded())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _print_tables(report: dict[str, Any], total: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    point = f" as of {report['as_of']}" if report["as_of"] else ""
    events = Table(
        title=Text(
            f"{report['aggregate_type']} {report['aggregate_id']}: "
            f"events 1-{report['version']} of {total}{point}"
        )
    )
    for title in ("v", "time", "type", "actor", "correlation id"):
        events.add_column(title, no_wrap=True, justify="right" if title == "v" else "left")
    events.add_column("data", overflow="fold")
    for row in report["events"]:
        data = ", ".join(f"{k}={_cell(v)}" for k, v in row["data"].items())
        # Text(), not str: stored values are never read as rich markup.
        events.add_row(*(Text(_cell(row[key])) for key in (
            "version", "timestamp", "type", "actor", "correlation_id")), Text(data))
    state = Table(title=Text(f"State at version {report['version']}{point}"))
    state.add_column("field", no_wrap=True)
    state.add_column("value", overflow="fold")
    for name, value in report["state"].items():
        state.add_row(Text(name), Text(_cell(value)))
    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough that nothing is folded
        console = Console(width=200)
    console.print(events)
    console.print(state)


def _cell(value: Any) -> str:
    import json

    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)
