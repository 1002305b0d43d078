"""Benchmark: what a reconciliation round costs to know every open deal of an account
(``application/account_holdings.py``) with ``--bots`` open deals on one live account.

    .venv/bin/python scripts/bench_reconcile_holdings.py [--bots 1000] [--rounds 50] \
        [--history 5] [--database postgresql://postgres@127.0.0.1:5432/test]

Writes into a schema of its own (``recon19_bench_<hex>``, dropped at the end): ``--bots``
deals opened on one account with three buys each, and ``--history`` closed deals per bot
before them (a log that is longer than what is open). Then: the first read (the log up to
its head, once per process), and ``--rounds`` rounds in which a tenth of the deals record a
buy (as other processes would) and the reconciler catches up and adds up the account's
holdings; processor time of this process (``time.process_time``: the decoding and adding
up; the server's side is one range read of the log by its primary key) per round, median
and 90th percentile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from adapters.clock import SequentialIds, SteppingClock
from application.account_holdings import AccountHoldings
from application.bootstrap import open_trading
from domain.deals import CloseReason, Deal
from domain.recording import Cause

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"recon19_bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.database}?schema={schema}"
    trading = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("bench"))
    try:
        run(trading, args)
    finally:
        trading.close()
        import psycopg

        from application.settings import _connect_kwargs, parse_database_url

        env = parse_database_url(args.database).env
        with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        key_dir = Path(os.environ.get("TRADETAPE_KEY_DIR") or Path("var") / "keys")
        for key_file in key_dir.glob(f"*-{schema}.*"):  # (the schema's keys go with it)
            key_file.unlink()


def run(trading, args) -> None:
    account, cause = str(uuid.uuid4()), Cause(T0, "bench", "bench")

    def opened(bot_id) -> Deal:
        deal = Deal.open(uuid.uuid4(), cause, bot_id=bot_id, owner_id="u1",
                         exchange_account_id=account, pair="BTC/USDT",
                         take_profit_pct=Decimal("1"), stop_loss_pct=None)
        for n in range(3):
            deal.record_buy(cause, order_id=uuid.uuid4(), safety_order=n,
                            price=Decimal("100"), amount=Decimal("0.01"), fee=Decimal(0))
        return deal

    bots = [uuid.uuid4() for _ in range(args.bots)]
    for _ in range(args.history):
        closed = []
        for bot in bots:
            deal = opened(bot)
            deal.close(cause, reason=CloseReason.TAKE_PROFIT, order_id=uuid.uuid4(),
                       price=Decimal("101"), amount=deal.units, fee=Decimal(0))
            closed.append(deal)
        for start in range(0, len(closed), 200):
            trading.append(*closed[start:start + 200])
    deals = [opened(bot) for bot in bots]
    for start in range(0, len(deals), 200):
        trading.append(*deals[start:start + 200])
    head = trading.recorder.max_notification_id()

    holdings = AccountHoldings(trading)
    cpu, wall = time.process_time(), time.perf_counter()
    read = holdings.catch_up()
    first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
    held = holdings.held(account)
    assert held == {"BTC": Decimal("0.03") * args.bots}, held
    print(f"log: {head} events; first read: {read} events, {first_cpu * 1000:.1f} ms "
          f"processor here ({first_wall * 1000:.0f} ms elapsed)")

    per_round = []
    tenth = max(1, args.bots // 10)
    for r in range(args.rounds):
        moved = deals[(r * tenth) % len(deals):][:tenth]
        for deal in moved:  # (another process's fills)
            deal.record_buy(cause, order_id=uuid.uuid4(), safety_order=3,
                            price=Decimal("99"), amount=Decimal("0.001"), fee=Decimal(0))
        trading.append(*moved)
        cpu = time.process_time()
        holdings.catch_up()
        held = holdings.held(account)
        per_round.append(time.process_time() - cpu)
    expected = sum(deal.units for deal in deals)
    assert held == {"BTC": expected}, (held, expected)
    ms = sorted(x * 1000 for x in per_round)
    print(f"{args.rounds} rounds, {tenth} buys recorded before each: processor here median "
          f"{statistics.median(ms):.2f} ms, p90 {ms[int(len(ms) * 0.9)]:.2f} ms")
    cpu = time.process_time()
    for _ in range(100):
        holdings.held(account)
    print(f"held() alone ({args.bots} open deals): "
          f"{(time.process_time() - cpu) * 10_000:.0f} µs")


if __name__ == "__main__":
    main()
