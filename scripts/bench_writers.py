"""Other users trading while the API is measured: ``scripts/bench_api.py`` runs this as a
child process that appends about ``--rate`` events a second to the same database, from
users the measured clients are not (each run registers new ones), through the real engine:
bots opening and closing deals on synthetic candles, one transaction per engine step.

    .venv/bin/python scripts/bench_writers.py --database URL [--rate 200] [--bots 20]

On PostgreSQL it is an engine worker as ``serve --role engine`` is one: it joins the lease
table, takes the leases of its bots before it starts them, renews them every quarter of
the lease time and fences every append with them. So a server on the same database (the
one measured: ``serve`` leases every running bot it finds free) leaves these bots to it,
as it leaves another worker's, and never writes for them: without the leases both traded
the same bots and every append of one of them lost to the other (``CONCURRENT_MODIFICATION``).
It does not hand any of its bots over to a server that wants a share: they are only
traded here, at the rate asked for.

Every second it prints ``progress T N`` (T: Unix time, N: events appended so far), which
``bench_api.py`` reads to say how many events were appended while it measured. It runs
until stopped (SIGTERM), then stops its bots and closes their deals (so a server started
later on the same database has nothing of theirs to trade), gives its leases back and
prints ``events N seconds S``. A lease it finds lost, or an append refused, stops it at
once with exit code 1 and the reason on stderr. Bots an earlier run left running (it was
killed) are stopped when it starts.
"""

from __future__ import annotations

import argparse
import os
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


class Worker:
    """This process as an engine worker: its leases, renewed, and the fence of its appends
    (``application.leases``). Without PostgreSQL (SQLite: one process owns the file) there
    is no lease table and nothing to fence."""

    def __init__(self, trading, url: str):
        from application.lease_fence import current_fence
        from application.leases import lease_seconds
        from application.settings import parse_database_url

        database = parse_database_url(url)
        self.seconds = lease_seconds(os.environ)  # as the server under test reads it
        self.tokens: dict[uuid.UUID, int] = {}
        self.store = None
        self.renewed = time.monotonic()
        if database.kind == "postgres":
            from adapters.event_store.leases import PostgresLeases

            trading.recorder.fence_source = current_fence
            self.store = PostgresLeases(database)
            self.store.join(self.seconds)

    def take(self, bot_ids: list[uuid.UUID]) -> None:
        """Leases of bots not started yet (no other worker wants them): all or a failure."""
        if self.store is None:
            return
        # Alive now (registering users took a while): a worker whose row expired is dead to
        # the others, and the server under test would adopt its bots as orphans.
        self.store.heartbeat(self.seconds)
        self.renewed = time.monotonic()
        taken = self.store.acquire(bot_ids, self.seconds)
        if set(taken) != set(bot_ids):
            raise SystemExit(
                f"bench_writers: {len(bot_ids) - len(taken)} of its new bots "
                "are leased by another worker"
            )
        self.tokens.update(taken)

    def fence(self):
        from application.lease_fence import Fence, fenced

        return fenced(Fence(self.store.worker, dict(self.tokens)) if self.store else None)

    def keep(self) -> None:
        """Every quarter of the lease time: still alive, every lease renewed, or stop."""
        if self.store is None or time.monotonic() - self.renewed < self.seconds / 4:
            return
        self.store.heartbeat(self.seconds)
        renewed = self.store.renew(self.seconds)
        lost = [b for b, token in self.tokens.items() if renewed.get(b) != token]
        if lost:
            raise SystemExit(f"bench_writers: lost the lease of {len(lost)} bot(s)")
        self.renewed = time.monotonic()

    def leave(self) -> None:
        if self.store is not None:
            self.store.leave()


def bench_config():
    """The configuration of every benchmark bot (``bench_api.py``'s too): a base order, one
    safety order 1% lower, a take profit 1% higher."""
    from domain.dca import DcaConfig

    return DcaConfig(
        pair="BTC/USDT",
        base_order_quote=Decimal(100),
        safety_order_quote=Decimal(50),
        max_safety_orders=1,
        price_deviation_pct=Decimal("1"),
        safety_volume_scale=Decimal(1),
        safety_step_scale=Decimal(1),
        take_profit_pct=Decimal("1"),
    )


def engines(trading, identity, worker: Worker, bots: int):
    """``bots`` running bots of two new users, each with its engine and venue, leased to
    ``worker`` before they start."""
    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.engine import DcaEngine
    from domain.bots import Bot
    from domain.recording import Cause

    run = uuid.uuid4().hex[:8]
    owners = []
    for u in range(2):
        user_id = identity.register(
            f"other-{run}-{u}@example.com", PASSWORD, verified=True, actor="system"
        )
        owners.append((str(user_id), str(identity.get_user(user_id).paper_account_id)))
    config = bench_config()
    ids = SequentialIds(f"bench-writers-{run}")
    created = []
    for k in range(bots):
        owner, account = owners[k % 2]
        cause = Cause(datetime.now(UTC), owner, f"writers:{run}:{k}")
        of = {"owner_id": owner, "exchange_account_id": account, "config": config}
        created.append(Bot.create(ids.new_id(), cause, name=f"other {k}", **of))
    trading.append(*created)  # created, not running: no worker wants them yet
    worker.take([bot.id for bot in created])
    found = []
    with worker.fence():
        for k, bot in enumerate(created):
            bot.start(Cause(datetime.now(UTC), str(bot.owner_id), f"writers:{run}:{k}:start"))
            trading.append(bot)
            worker.keep()  # a loaded machine may take longer than a lease to start them all
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
        rows = store.query(
            f"SELECT bot_id FROM {store.q('fe_bots')} WHERE "
            "substr(name, 1, 6) = 'other ' AND status <> 'stopped'"
        )
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


def trade(trading, worker: Worker, running, rate: float, stopping: list) -> tuple[int, float, int]:
    """Steps every bot in turn, appending at about ``rate`` events/s until stopped; returns
    (events appended, seconds, steps)."""
    from domain.recording import ENGINE, Cause

    started, events, step = time.perf_counter(), 0, 0
    reported = 0.0
    while not stopping:
        for bot, venue, engine in running:
            at = datetime.now(UTC) + timedelta(minutes=step)
            engine.begin_step(Cause(at, ENGINE, f"writers:{bot.id}:{step}"))
            venue.walk_candle(*candle(step), engine)
            engine.on_close(candle(step)[3])
            changed = engine.take_changes()
            if changed:
                with worker.fence():
                    events += trading.append(*changed)
            worker.keep()
            now = time.perf_counter()
            if now - reported >= 1:
                print(f"progress {time.time():.3f} {events}", flush=True)
                reported = now
            behind = events / rate - (now - started)
            if behind > 0:  # ahead of the rate: wait for it
                time.sleep(behind)
            if stopping:
                break
        step += 1
    print(f"progress {time.time():.3f} {events}", flush=True)
    return events, time.perf_counter() - started, step


def close_all(trading, worker: Worker, running, step: int) -> None:
    """Each bot stopped, then a candle closing any open deal."""
    from domain.recording import ENGINE, Cause

    at = datetime.now(UTC) + timedelta(minutes=step + 1)
    with worker.fence():
        for bot, venue, engine in running:
            engine.begin_step(Cause(at, ENGINE, f"writers:{bot.id}:last"))
            bot.stop(Cause(at, str(bot.owner_id), f"writers:{bot.id}:stop"))
            venue.walk_candle(*candle(1), engine)
            engine.on_close(candle(1)[3])
            trading.append(*{a.id: a for a in (bot, *engine.take_changes())}.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--bots", type=int, default=20)
    args = parser.parse_args()

    from application.bootstrap import open_identity, open_trading

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    trading = open_trading(args.database)
    identity = open_identity(args.database, trading=trading, secret_key=SECRET_KEY, bcrypt_rounds=4)
    worker = Worker(trading, args.database)
    try:
        stop_bots(trading, left_running(trading, args.database))
        running = engines(trading, identity, worker, args.bots)
        events, seconds, step = trade(trading, worker, running, args.rate, stopping)
        close_all(trading, worker, running, step)
    finally:
        worker.leave()
        identity.close()
        trading.close()
    print(f"events {events} seconds {seconds:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
