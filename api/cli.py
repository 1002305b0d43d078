"""``tradetape``: the command line. Each command's module is imported only when it runs, so
``tradetape dca-plan`` does not pay for numpy, ccxt or the web stack."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# name -> (module under api.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dca-plan": ("dca_plan", "show a DCA bot's safety-order ladder for an entry price"),
    "events": ("events", "show an aggregate's event history and its state at a point in time"),
    "backtest": ("backtest", "run a DCA bot over historical candles"),
    "compare": ("compare", "backtest several bot configurations on the same candles, ranked"),
    "candles": ("candles", "fetch: download an exchange's candles into a backtest CSV"),
    "replay": ("replay", "rebuild stored aggregates from events; --check re-runs backtests"),
    "demo": ("demo", "a short tour of the core: a bot, a deal and its events"),
    "serve": ("serve", "run the server: GraphQL API, accounts, paper trading in real time"),
    "users": ("users", "manage user accounts: create, verify, block, unblock, role, list, "
                       "forget"),
    "emergency": ("emergency", "halt all trading now (stop), or let it carry on (resume)"),
    "projections": ("projections", "read models: run (follow the log), status, rebuild"),
    "pnl": ("pnl", "realized and unrealized P/L per owner and bot, now or as of a time"),
    "balances": ("balances", "free, locked and total per owner, account and asset"),
    "audit": ("audit", "verify the hash-chained audit log, or export the raw history"),
    "corrections": ("corrections", "correct past fees without rewriting history"),
    "keys": ("keys", "rotate the master key that wraps every user's data key"),
    "accounts": ("accounts", "a user's exchange accounts: add (keys checked, then sealed), "
                             "list, balances, remove"),
    "wallet": ("wallet", "requirements: what each account's running bots may still spend "
                         "against what it holds; plans: funding plans"),
    "backup": ("backup", "back up the store at one position, verify a backup, restore one"),
    "promotion": ("promotion", "what the paper → live promotion gate says about a bot, now "
                               "or --as-of a past moment"),
    "plans": ("plans", "the plans users subscribe to: create, update, list"),
    "subscriptions": ("subscriptions", "sweep: expire subscriptions past their grace"),
    "billing": ("billing", "report: a month of the billing ledger (revenue, refunds, top-ups)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command is listed; only ``only``'s options are declared when it is given
    (importing every command module to declare options no one asked for costs ~20 ms)."""
    parser = argparse.ArgumentParser(
        prog="tradetape",
        description="Event-sourced crypto trading engine: every decision replayable.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        if only is None or name == only:
            _command_module(module).add_arguments(sub)
    return parser


def _command_module(module: str):
    return importlib.import_module(f"api.commands.{module}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen command's module is imported.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    from api.commands.common import run_reporting_errors

    return run_reporting_errors(_command_module(args._module).run, args)


def entry() -> None:
    """The ``tradetape`` console script. Everything that must outlive the process was
    committed and closed by the command itself, so it skips the interpreter's teardown
    (freeing a backtest's arrays and events one object at a time costs ~0.07 s)."""
    # Nothing here multiplies matrices: numpy's BLAS need not start a thread per core when
    # it loads (~5 ms of every command that uses numpy). An explicit setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from api import code_cache

    code_cache.install()  # before any of our dataclasses is defined
    code = main()
    code_cache.save()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            code = code or 0  # the reader went away; what it read is all it wanted
    os._exit(code)


if __name__ == "__main__":
    entry()
