"""Other users trading while the API is measured: ``scripts/bench_api.py`` runs this as a
child process that appends about ``--rate`` events a second to the same database, from
users the measured clients are not (each run registers new ones), through the real engine:
bots opening and closing deals on synthetic candles, one transaction per engine step.

    .venv/bin/python scripts/bench_writers.py --database URL [--rate 200] [--bots 20]

It runs until stopped (SIGTERM), then stops its bots and closes their deals (so a server
started later on the same database has nothing of theirs to trade) and prints
``events N seconds S`` on stdout. Bots an earlier run left running (it was killed) are
stopped when it starts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-api-secret-key-0123456789abcdefghij"
PASSWORD = "Bench-password-1"


def engines(trading, identity, bots: int):
    """``bots`` running bots of two new users, each with its engine and venue."""
    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.engine import DcaEngine
    from domain.bots import Bot
    from domain.dca import DcaConfig
    from domain.recording import Cause

    run = uuid.uuid4().hex[:8]
    owners = []
    for u in range(2):
        user_id = identity.register(f"other-{run}-{u}@example.com", PASSWORD, verified=True,
                                    actor="system")
        owners.append((str(user_id), str(identity.get_user(user_id).paper_account_id)))
    config = DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(100),
                       safety_order_quote=Decimal(50), max_safety_orders=1,
                       price_deviation_pct=Decimal("1"), safety_volume_scale=Decimal(1),
                       safety_step_scale=Decimal(1), take_profit_pct=Decimal("1"))
    ids = SequentialIds(f"bench-writers-{run}")
    found = []
    for k in range(bots):
        owner, account = owners[k % 2]
        cause = Cause(datetime.now(UTC), owner, f"writers:{run}:{k}")
        bot = Bot.create(ids.new_id(), cause, name=f"other {k}", owner_id=owner,
                         exchange_account_id=account, config=config)
        bot.start(cause)
        trading.append(bot)
        venue = PaperExchange(config.pair)
        found.append((bot, venue, DcaEngine(bot, venue, ids)))
    return found


def stop_bots(trading, bots) -> int:
    """Stops each bot still running (a ``Stopped`` event each); returns how many."""
    from domain.errors import DomainError
    from domain.recording import Cause

    stopped = 0
    for bot in bots:
        try:
            bot.stop(Cause(datetime.now(UTC), str(bot.owner_id), f"writers:{bot.id}:stop"))
        except DomainError:  # already stopped
            continue
        trading.append(bot)
        stopped += 1
    return stopped


def left_running(trading, url: str) -> list:
    """The bots of earlier runs (named ``other N``) the read models show as not stopped."""
    from application.settings import parse_database_url
    from projections.store import open_view_store

    store = open_view_store(parse_database_url(url))
    try:
        rows = store.query(f"SELECT bot_id FROM {store.q('fe_bots')} WHERE "
                           "substr(name, 1, 6) = 'other ' AND status <> 'stopped'")
    except Exception:  # no read models yet: nothing left
        rows = []
    finally:
        store.close()
    return [trading.get_bot(uuid.UUID(str(row[0]))) for row in rows]


def candle(step: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Alternately where a deal opens and where its take profit is reached."""
    price = Decimal(100)
    if step % 2 == 0:
        return price, price * Decimal("1.002"), price * Decimal("0.999"), price
    return price, price * Decimal("1.02"), price * Decimal("0.999"), price


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--bots", type=int, default=20)
    args = parser.parse_args()

    from application.bootstrap import open_identity, open_trading
    from domain.recording import ENGINE, Cause

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    trading = open_trading(args.database)
    identity = open_identity(args.database, trading=trading, secret_key=SECRET_KEY,
                             bcrypt_rounds=4)
    stop_bots(trading, left_running(trading, args.database))
    running = engines(trading, identity, args.bots)
    started, events, step = time.perf_counter(), 0, 0
    while not stopping:
        for bot, venue, engine in running:
            at = datetime.now(UTC) + timedelta(minutes=step)
            engine.begin_step(Cause(at, ENGINE, f"writers:{bot.id}:{step}"))
            venue.walk_candle(*candle(step), engine)
            engine.on_close(candle(step)[3])
            changed = engine.take_changes()
            if changed:
                events += trading.append(*changed)
            behind = events / args.rate - (time.perf_counter() - started)
            if behind > 0:  # ahead of the rate: wait for it
                time.sleep(behind)
            if stopping:
                break
        step += 1
    seconds = time.perf_counter() - started
    at = datetime.now(UTC) + timedelta(minutes=step + 1)
    for bot, venue, engine in running:  # stopped, then a candle closing any open deal
        engine.begin_step(Cause(at, ENGINE, f"writers:{bot.id}:last"))
        bot.stop(Cause(at, str(bot.owner_id), f"writers:{bot.id}:stop"))
        venue.walk_candle(*candle(1), engine)
        engine.on_close(candle(1)[3])
        trading.append(*{a.id: a for a in (bot, *engine.take_changes())}.values())
    print(f"events {events} seconds {seconds:.1f}", flush=True)
    identity.close()
    trading.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
