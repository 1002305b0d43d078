"""tradetape users create|verify|block|unblock|role|list|forget ... [--database URL]

Operators manage accounts from the command line, against the configured database:

    tradetape users create --email E --password P [--role admin] [--verified]
    tradetape users verify|block|unblock|forget EMAIL
    tradetape users role EMAIL ROLE
    tradetape users list [--json]

Every action that changes something takes ``--actor NAME`` (default: the OS user) and
records it as ``operator:NAME`` in each event it writes.

``--password -`` reads the password from standard input (keeps it out of shell history).
Mail (the verification token) goes to the console unless ``TRADETAPE_SMTP_URL`` is set.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from api.commands.actors import add_actor_option, operator_of
from api.commands.common import add_database_option

if TYPE_CHECKING:
    from application.identity import Identity
    from application.user_views import UserView

ROLES = ("user", "provider", "admin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="register a user (with a paper account)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True,
                        help="at least 10 characters with an upper, a lower and a digit; "
                             "'-' reads it from standard input")
    create.add_argument("--role", choices=ROLES, default="user")
    create.add_argument("--verified", action="store_true",
                        help="mark the email verified (no verification mail)")
    create.add_argument("--display-name", default=None)
    add_database_option(create)
    add_actor_option(create)
    for action, help_text in (
        ("verify", "mark a user's email verified"),
        ("block", "block a user: their tokens stop working, their running bots pause"),
        ("unblock", "unblock a user (their bots stay paused)"),
        ("forget", "erase a user's personal data for good (crypto-shredding)"),
    ):
        sub = actions.add_parser(action, help=help_text, description=help_text)
        sub.add_argument("email", metavar="EMAIL")
        add_database_option(sub)
        add_actor_option(sub)
    role = actions.add_parser("role", help="change a user's role",
                              description="change a user's role (an event on the user)")
    role.add_argument("email", metavar="EMAIL")
    role.add_argument("role", metavar="ROLE", choices=ROLES, help=" | ".join(ROLES))
    add_database_option(role)
    add_actor_option(role)
    listing = actions.add_parser("list", help="every user, erased ones included")
    listing.add_argument("--json", action="store_true", help="a JSON array on stdout")
    add_database_option(listing)


def run(args: argparse.Namespace) -> int:
    from eventsourcing.persistence import PersistenceError

    from api.commands.common import EXIT_FAILED, CommandError
    from application.bootstrap import open_identity
    from application.settings import parse_database_url

    display = parse_database_url(args.database).display
    try:
        identity = open_identity(args.database)
    except (PersistenceError, OSError) as error:
        raise CommandError("DATABASE_UNAVAILABLE", f"cannot open {display}: {error}",
                           exit_code=EXIT_FAILED) from None
    try:
        return _ACTIONS[args.action](identity, args)
    finally:
        identity.close()


def _create(identity: Identity, args: argparse.Namespace) -> int:
    import sys

    from api.commands.common import EXIT_USAGE
    from domain.credentials import WeakPasswordError

    password = sys.stdin.readline().rstrip("\r\n") if args.password == "-" else args.password
    try:
        user_id = identity.register(args.email, password, role=args.role,
                                    verified=args.verified, display_name=args.display_name,
                                    actor=operator_of(args))
    except WeakPasswordError as error:
        for violation in error.violations:
            print(f"error: {violation}", file=sys.stderr)
        return EXIT_USAGE
    user = identity.get_user(user_id)
    balance = identity.settings.starting_balance
    print(f"created {user.role} {user.email} ({user.id}), "
          f"{'verified' if user.email_verified else 'verification mailed'}; "
          f"paper account {user.paper_account_id} with {balance} "
          f"{identity.settings.quote_asset}")
    return 0


def _verify(identity: Identity, args: argparse.Namespace) -> int:
    user = identity.confirm_email(_user(identity, args.email).id,
                                  actor=operator_of(args))
    print(f"verified {user.email} ({user.id})")
    return 0


def _block(identity: Identity, args: argparse.Namespace) -> int:
    user = identity.block(_user(identity, args.email).id,
                          actor=operator_of(args))
    print(f"blocked {user.email} ({user.id}): sessions ended, running bots paused")
    return 0


def _unblock(identity: Identity, args: argparse.Namespace) -> int:
    user = identity.unblock(_user(identity, args.email).id,
                            actor=operator_of(args))
    print(f"unblocked {user.email} ({user.id}); their bots stay paused until restarted")
    return 0


def _forget(identity: Identity, args: argparse.Namespace) -> int:
    user = identity.forget(_user(identity, args.email).id,
                           actor=operator_of(args))
    print(f"forgot {user.id}: data key destroyed, personal data unreadable; "
          "the event history is kept")
    return 0


def _role(identity: Identity, args: argparse.Namespace) -> int:
    user = identity.set_role(_user(identity, args.email).id, args.role,
                             actor=operator_of(args))
    print(f"{user.email} ({user.id}) is now {user.role}")
    return 0


def _list(identity: Identity, args: argparse.Namespace) -> int:
    from api.commands.common import print_json

    rows = [_row(user) for user in identity.list_users()]
    if args.json:
        print_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(rows)} users")
    columns = ("id", "email", "role", "verified", "blocked", "registered_at")
    for column in columns:
        table.add_column(column.replace("_", " "), no_wrap=True)
    for row in rows:
        table.add_row(*(Text(_cell(row[column])) for column in columns))
    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough that nothing is folded
        console = Console(width=200)
    console.print(table)
    return 0


def _user(identity: Identity, email: str) -> UserView:
    from api.commands.common import CommandError

    user = identity.find_user(email)
    if user is None:
        raise CommandError("NOT_FOUND", f"no user with email {email!r}")
    return user


def _row(user: UserView) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "verified": user.email_verified,
        "blocked": user.blocked,
        "erased": user.erased,
        "paper_account_id": str(user.paper_account_id),
        "registered_at": user.registered_at.isoformat(),
    }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


_ACTIONS = {"create": _create, "verify": _verify, "block": _block, "unblock": _unblock,
            "forget": _forget, "role": _role, "list": _list}
