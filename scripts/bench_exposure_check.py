"""Benchmark: an engine append's exposure-hold check for N users (``check_stamps``'s
locks, ``adapters/event_store/exposure_stamps.py``), hold19's and lock19's (session 18).

    .venv/bin/python scripts/bench_exposure_check.py [--users 10000] [--runs 100] \
        [--database postgresql://postgres@127.0.0.1:5432/test]

hold19's check tried a shared lock per bucket (a hold took its bucket exclusive); lock19's
tries one of each bucket's ``SLOTS`` keys exclusive (a hold takes them all shared). Each
figure: ``--runs`` checks, each in its own transaction, processor time of this process and
of the server's backend (from /proc: the server on this host) per check, and the advisory
locks the check's transaction holds. Three rounds, the two checks alternated, with nothing
held, with one bucket kept by a hold on a second connection (the held user not judged),
and with another engine append's transaction open on a third connection (its check done
on the same users; lock19's with ``SLOTS`` 1 too: the bucket alone, exclusive). Then each
check with the held user judged (refused after the bounded wait). Prints how many users
share the held user's bucket. Takes only advisory locks (no table, no schema): nothing
to clean up.

    .venv/bin/python scripts/bench_exposure_check.py --figures [--count 10] [--runs 300]

``--figures``: what a check's figures cost (expo20), on a fresh SQLite file in a temporary
directory: ``--count`` positions of one user entered at market on a live venue (their
``Position.OrderPlaced`` records a judged price), each entry filled, their figure as
``Positions.exposure_of`` takes it (the positions loaded together, then
``committed_by``); and ``--count`` bots with an open deal each, their base order filled,
as ``logged_exposure`` judges them. Prints the median processor time of ``--runs`` calls
of each (the first call is made before, as any process's first check). Run it with
``PYTHONPATH`` at another checkout to time that code on the same figures.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg

from adapters.clock import SequentialIds
from adapters.event_store import exposure_stamps as es
from application.settings import _connect_kwargs, parse_database_url

SPACE = "bench_exposure"  # the locks' name space (a schema name; none is created)
HOLD19_SPACE = "bench_exposure_hold19"


@lru_cache(maxsize=1 << 16)  # (cached as ``lock_keys`` is)
def hold19_keys(owner: str) -> tuple[int, int]:
    return es._space("exposure", HOLD19_SPACE), es.lock_keys(SPACE, owner)[1]


def hold19_check(curs, owners: list[str]) -> None:
    """hold19's ``_wait_for_holds``: shared bucket locks tried, own keys in a held one."""
    buckets = {o: hold19_keys(o) for o in owners}
    keys = sorted(set(buckets.values()))
    curs.execute(es._TRY_SHARED, ([k[0] for k in keys], [k[1] for k in keys]))
    kept = {es._key(row) for row in curs.fetchall()}
    if not kept:
        return
    mine = {o: es.owner_keys(SPACE, o) for o in owners if buckets[o] in kept}
    keys = sorted(set(mine.values()))
    curs.execute(es._TRY_SHARED, ([k[0] for k in keys], [k[1] for k in keys]))
    waited = sorted(es._key(row) for row in curs.fetchall())
    if waited:
        curs.execute("SET LOCAL lock_timeout = '5s'")
        curs.execute("SELECT pg_advisory_xact_lock_shared(k1, k2) FROM unnest("
                     "%s::int[], %s::int[]) AS k(k1, k2)",
                     ([k[0] for k in waited], [k[1] for k in waited]))


def lock19_check(curs, owners: list[str]) -> None:
    es._wait_for_holds(curs, SPACE, owners)


@contextmanager
def slots(n: int):
    before, es.SLOTS = es.SLOTS, n
    try:
        yield
    finally:
        es.SLOTS = before


def hold19_hold(conn, owner: str) -> None:
    conn.execute("SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)",
                 (*hold19_keys(owner), *es.owner_keys(SPACE, owner)))


def lock19_hold(conn, owner: str) -> None:
    keys = es.slot_keys(es.lock_keys(SPACE, owner))
    conn.execute("SELECT pg_advisory_lock_shared(k1, k2) FROM unnest(%s::int[], %s::int[]) "
                 "AS k(k1, k2)", ([k[0] for k in keys], [k[1] for k in keys]))
    conn.execute("SELECT pg_advisory_lock(%s, %s)", es.owner_keys(SPACE, owner))


def server_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_check(conn, check: Callable, owners: list[str], runs: int) -> str:
    """(client, server) processor milliseconds per check, and the locks it holds."""
    pid = conn.info.backend_pid
    server, client = server_seconds(pid), time.process_time()
    for _ in range(runs):
        with conn.transaction(), conn.cursor() as curs:
            check(curs, owners)
    client = (time.process_time() - client) * 1000 / runs
    server = (server_seconds(pid) - server) * 1000 / runs
    with conn.transaction(), conn.cursor() as curs:
        check(curs, owners)
        curs.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND "
                     "locktype = 'advisory'")
        locks = curs.fetchone()[0]
    return f"client {client:.2f} ms, server {server:.2f} ms, {locks} locks"


def figures(count: int, runs: int) -> None:
    """Median processor milliseconds of a user's positions' figure and of
    ``logged_exposure``, ``count`` of each (see the module's docstring)."""
    import inspect
    import statistics
    import tempfile

    from application.bootstrap import open_trading
    from application.logged_exposure import logged_exposure
    from application.position_exposure import committed_by
    from domain.positions import Position

    with tempfile.TemporaryDirectory() as tmp:
        trading = open_trading(f"sqlite:///{tmp}/events.sqlite", ids=SequentialIds("bench"))
        positions, bots = _seed_figures(trading, count)
        # (before session 18: the judged prices a process kept of its own entries: none)
        before = {"judged": {}} if "judged" in inspect.signature(committed_by).parameters \
            else {}

        def positions_figure():
            return committed_by(trading, trading.load_many(positions, Position).values(), {},
                                **before)

        def deals_figure():
            return logged_exposure(trading, bots)

        for name, call in (("positions", positions_figure), ("deals", deals_figure)):
            answer = call()
            times = []
            for _ in range(runs):
                started = time.process_time()
                call()
                times.append((time.process_time() - started) * 1000)
            print(f"{count} {name}: {statistics.median(times):.2f} ms median of {runs} "
                  f"(processor), answer {answer}")
        trading.close()


def _seed_figures(trading, count: int) -> tuple[list, list]:
    """User u1's ``count`` positions entered at market on a live venue and ``count`` bots
    with an open deal each, every buy filled (0.002 at 50,000): (position ids, bot ids)."""
    import inspect
    from decimal import Decimal

    from domain.dca import DcaConfig
    from domain.deals import Deal
    from domain.orders import Order, OrderPurpose, OrderSide, OrderType
    from domain.positions import Position

    config = DcaConfig.from_mapping({
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 2, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
        "safety_step_scale": "1.2", "take_profit_pct": "40"})
    price, amount, fee, ids = Decimal("50000"), Decimal("0.002"), Decimal("0"), trading.ids
    account = str(trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT"))

    def bought(cause, purpose: OrderPurpose, **of) -> Order:
        order = Order.submit(ids.new_id(), cause, client_order_id=ids.new_id().hex,
                             owner_id="u1", exchange_account_id=account, pair="BTC/USDT",
                             side=OrderSide.BUY, type=OrderType.MARKET, amount=amount,
                             purpose=purpose, **of)
        order.accept(cause, order.client_order_id)
        order.fill(cause, trade_id="t", price=price, amount=amount, fee=fee,
                   fee_currency="USDT")
        return order

    positions, bots = [], []
    for _ in range(count):
        cause = trading.cause("u1")
        position = Position.open(ids.new_id(), cause, owner_id="u1",
                                 exchange_account_id=account, pair="BTC/USDT", entry="market")
        order = bought(cause, OrderPurpose.MANUAL)
        judged = {"judged_price": price} if "judged_price" in inspect.signature(
            position.order_placed).parameters else {}  # (before session 18: none)
        position.order_placed(cause, order_id=order.id, exit_id=None, leg="entry", **judged)
        position.record_buy(cause, order_id=order.id, price=price, amount=amount, fee=fee)
        trading.save_all(position, order)
        positions.append(position.id)
        bot_id = trading.create_bot(owner_id="u1", name=f"bot {len(bots)}", config=config,
                                    exchange_account_id=account)
        trading.start_bot(bot_id, actor="u1")
        bot = trading.get_bot(bot_id)
        deal = Deal.open(ids.new_id(), cause, bot_id=bot.id, owner_id="u1",
                         exchange_account_id=account, pair="BTC/USDT",
                         take_profit_pct=Decimal("40"), stop_loss_pct=None)
        bot.start_deal(cause, deal.id)
        base = bought(cause, OrderPurpose.BASE, bot_id=bot.id, deal_id=deal.id)
        deal.record_buy(cause, order_id=base.id, safety_order=0, price=price, amount=amount,
                        fee=fee)
        trading.save_all(bot, deal, base)
        bots.append(bot.id)
    return positions, bots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--figures", action="store_true")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=None)  # 100 (--figures: 300)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.figures:
        figures(args.count, args.runs or 300)
        return
    args.runs = args.runs or 100
    kwargs = _connect_kwargs(parse_database_url(args.database).env)
    owners = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(args.users)]
    held = owners[0]
    bucket = es.lock_keys(SPACE, held)
    mates = sum(es.lock_keys(SPACE, o) == bucket for o in owners) - 1
    checks = (("hold19", hold19_check, hold19_hold), ("lock19", lock19_check, lock19_hold))
    with psycopg.connect(**kwargs, autocommit=True) as conn, \
            psycopg.connect(**kwargs, autocommit=True) as holder, \
            psycopg.connect(**kwargs, autocommit=True) as engine:
        print(f"{args.users} users, {len({es.lock_keys(SPACE, o) for o in owners})} buckets, "
              f"{mates} users share the held user's bucket, SLOTS {es.SLOTS}")
        for n in range(3):
            for name, check, _ in checks:
                print(f"round {n} {name}, nothing held: "
                      f"{per_check(conn, check, owners, args.runs)}")
            for name, check, hold in checks:
                hold(holder, held)
                try:
                    print(f"round {n} {name}, one bucket held: "
                          f"{per_check(conn, check, owners[1:], args.runs)}")
                finally:
                    holder.execute("SELECT pg_advisory_unlock_all()")
            for name, check, slot_count in (*((c[0], c[1], es.SLOTS) for c in checks),
                                            ("lock19 SLOTS 1", lock19_check, 1)):
                with slots(slot_count), engine.transaction(), engine.cursor() as curs:
                    check(curs, owners)  # (kept until the figure is taken)
                    print(f"round {n} {name}, another append in flight: "
                          f"{per_check(conn, check, owners, args.runs)}")
        for name, check, hold in checks:
            hold(holder, held)
            started = time.monotonic()
            try:
                per_check(conn, check, owners, 1)
            except (es.ExposureHeldError, psycopg.errors.LockNotAvailable) as error:
                # (hold19's check here raises the lock_not_available the store names)
                print(f"{name}, the held user judged: {type(error).__name__} after "
                      f"{time.monotonic() - started:.2f} s")
            finally:
                holder.execute("SELECT pg_advisory_unlock_all()")


if __name__ == "__main__":
    main()
