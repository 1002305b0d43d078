"""tradetape accounts add|list|balances|remove --email USER ... [--database URL]

Operators manage a user's exchange accounts from the command line:

    tradetape accounts add --email E --exchange binance [--sandbox] --api-key K --secret S
                           [--password P] [--name NAME] [--json]
    tradetape accounts list --email E [--json]
    tradetape accounts balances --email E [--account ID] [--json]
    tradetape accounts remove ACCOUNT_ID --email E

``add`` checks the keys with an authenticated call first: refused, it stores nothing and
exits 1 naming the code (``EXCHANGE_AUTH_FAILED``, ``EXCHANGE_UNAVAILABLE``, ...). ``-`` as
a key reads it from standard input (one line each, in the order api key, secret, password),
which keeps it out of the shell's history. ``balances`` asks the exchange and records what
it says. Actions that write take ``--actor NAME`` (recorded as ``operator:NAME``).
``TRADETAPE_SANDBOX_HOST`` sends sandbox accounts' requests to that host instead.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from api.commands.actors import add_actor_option
from api.commands.common import add_database_option

if TYPE_CHECKING:
    from application.exchange_accounts import AccountView, ExchangeAccounts

# Refusals from the exchange: the command failed (exit 1), the input was not wrong.
EXCHANGE_CODES = ("EXCHANGE_AUTH_FAILED", "EXCHANGE_UNAVAILABLE", "EXCHANGE_NOT_SUPPORTED",
                  "EXCHANGE_PERMISSION_DENIED", "EXCHANGE_ERROR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a live exchange account (keys checked first)",
                             description="add a user's exchange account: its keys are "
                                         "checked with the exchange before anything is "
                                         "stored, then kept sealed")
    _email(add)
    add.add_argument("--exchange", required=True, metavar="ID",
                     help="the exchange as ccxt names it, e.g. binance")
    add.add_argument("--sandbox", action="store_true",
                     help="the exchange's sandbox (testnet): no real money")
    add.add_argument("--api-key", required=True, metavar="K", help="'-': read from stdin")
    add.add_argument("--secret", required=True, metavar="S", help="'-': read from stdin")
    add.add_argument("--password", default=None, metavar="P",
                     help="the key's passphrase, for exchanges that have one")
    add.add_argument("--name", default=None, help="how the account is shown")
    add.add_argument("--json", action="store_true", help="a JSON object on stdout")
    add_database_option(add)
    add_actor_option(add)
    listing = actions.add_parser("list", help="a user's exchange accounts (paper included)")
    _email(listing)
    listing.add_argument("--json", action="store_true", help="a JSON array on stdout")
    add_database_option(listing)
    balances = actions.add_parser(
        "balances", help="ask the exchange for a user's balances now, and record them")
    _email(balances)
    balances.add_argument("--account", default=None, metavar="ID",
                          help="only this account (default: every live account)")
    balances.add_argument("--json", action="store_true", help="a JSON array on stdout")
    add_database_option(balances)
    add_actor_option(balances)
    remove = actions.add_parser("remove", help="remove a live exchange account "
                                               "(refused while a bot runs on it)")
    remove.add_argument("account", metavar="ACCOUNT_ID")
    _email(remove)
    add_database_option(remove)
    add_actor_option(remove)


def _email(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True, metavar="USER",
                        help="the user's email address")


def run(args: argparse.Namespace) -> int:
    import logging

    from eventsourcing.persistence import PersistenceError

    from api.commands.common import EXIT_FAILED, CommandError
    from application.bootstrap import open_exchange_accounts, open_identity
    from application.settings import parse_database_url
    from domain.errors import DomainError

    display = parse_database_url(args.database).display
    # A refusal is said once, as this command's error line (the service also logs it,
    # for servers).
    logging.getLogger("tradetape.accounts").setLevel(logging.ERROR)
    try:
        identity = open_identity(args.database)
    except (PersistenceError, OSError) as error:
        raise CommandError("DATABASE_UNAVAILABLE", f"cannot open {display}: {error}",
                           exit_code=EXIT_FAILED) from None
    try:
        user = identity.find_user(args.email)
        if user is None or user.erased:
            raise CommandError("NOT_FOUND", f"no user with email {args.email!r}")
        accounts = open_exchange_accounts(identity)
        try:
            return _ACTIONS[args.action](accounts, user.id, args)
        except DomainError as error:
            if error.code in EXCHANGE_CODES:
                raise CommandError(error.code, error.message, exit_code=EXIT_FAILED) from None
            raise
    finally:
        identity.close()


def _add(accounts: ExchangeAccounts, user_id, args: argparse.Namespace) -> int:
    from api.commands.actors import operator_of
    from api.commands.common import print_json

    api_key, secret, password = _keys_from_stdin(args)
    account = accounts.add(user_id, exchange=args.exchange, sandbox=args.sandbox,
                           api_key=api_key, secret=secret, password=password,
                           name=args.name, actor=operator_of(args))
    if args.json:
        print_json(row_of(account))
        return 0
    assets = ", ".join(f"{asset} {b.total}" for asset, b in account.balances.items())
    print(f"added {_mode(account)} account {account.name!r} ({account.id}) on "
          f"{account.exchange}: keys work, balances {assets or 'none'}")
    return 0


def _keys_from_stdin(args: argparse.Namespace) -> tuple[str, str, str | None]:
    import sys

    values = []
    for value in (args.api_key, args.secret, args.password):
        values.append(sys.stdin.readline().rstrip("\r\n") if value == "-" else value)
    return values[0], values[1], values[2]


def _list(accounts: ExchangeAccounts, user_id, args: argparse.Namespace) -> int:
    from api.commands.common import print_json

    rows = [row_of(account) for account in accounts.list(user_id)]
    if args.json:
        print_json(rows)
        return 0
    _table(f"{len(rows)} exchange accounts", rows,
           ("id", "name", "exchange", "mode", "status", "checked_at", "last_sync_at"))
    return 0


def _balances(accounts: ExchangeAccounts, user_id, args: argparse.Namespace) -> int:
    """Every live account (or the one asked), each asked in turn: a failure is said for
    that account and the command exits 1 after the others."""
    import sys

    from api.commands.actors import operator_of
    from api.commands.common import EXIT_FAILED, print_json
    from domain.errors import DomainError

    chosen = ([accounts.get(user_id, _account_id(args.account))] if args.account
              else [a for a in accounts.list(user_id) if a.live])
    rows, failed = [], False
    for account in chosen:
        try:
            rows.append(row_of(accounts.sync(user_id, account.id, actor=operator_of(args))))
        except DomainError as error:
            if error.code not in EXCHANGE_CODES:
                raise
            failed = True
            print(f"error: {error.code}: {account.name} ({account.id}): {error.message}",
                  file=sys.stderr)
            rows.append(row_of(accounts.get(user_id, account.id)))
    if args.json:
        print_json(rows)
    else:
        _table("balances reported by the exchanges", [
            {**row, "asset": asset, **amounts}
            for row in rows for asset, amounts in (row["balances"] or {"-": {}}).items()],
            ("name", "mode", "status", "last_sync_at", "asset", "free", "locked", "total"))
    return EXIT_FAILED if failed else 0


def _remove(accounts: ExchangeAccounts, user_id, args: argparse.Namespace) -> int:
    from api.commands.actors import operator_of

    account = accounts.remove(user_id, _account_id(args.account), actor=operator_of(args))
    print(f"removed {_mode(account)} account {account.name!r} ({account.id}) on "
          f"{account.exchange}")
    return 0


def _account_id(text: str):
    from uuid import UUID

    from api.commands.common import CommandError

    try:
        return UUID(text.strip())
    except ValueError:
        raise CommandError("NOT_FOUND", f"no exchange account {text!r}") from None


def _mode(account: AccountView) -> str:
    """How an account is named everywhere: sandbox, LIVE (real money) or paper."""
    if not account.live:
        return "paper"
    return "sandbox" if account.sandbox else "LIVE"


def row_of(account: AccountView) -> dict[str, Any]:
    """An account as the CLI shows it: never a key."""
    return {
        "id": str(account.id), "name": account.name, "exchange": account.exchange,
        "kind": account.kind.value, "sandbox": account.sandbox, "mode": _mode(account),
        "status": account.status,
        "checked_at": account.checked_at.isoformat() if account.checked_at else None,
        "last_sync_at": account.last_sync_at.isoformat() if account.last_sync_at else None,
        # A paper account's balances come from its trades: `tradetape balances`.
        "balances": {asset: {"free": b.free, "locked": b.locked, "total": b.total}
                     for asset, b in account.balances.items()} if account.live else None,
    }


def _table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    from api.commands.common import print_table

    print_table(title, rows, columns)


_ACTIONS = {"add": _add, "list": _list, "balances": _balances, "remove": _remove}
