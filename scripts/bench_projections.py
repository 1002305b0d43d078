"""Benchmark: rebuild every projection from a log of at least a million events on PostgreSQL,
beside the speed of merely reading the same notifications from the store.

    .venv/bin/python scripts/bench_projections.py \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_projections] \
        [--events 1000000] [--workers 2] [--batch-size 10000] [--fresh]

The log is made (once; kept for the next runs unless --fresh) of backtests of a DCA bot on a
saw-tooth market that opens and closes a deal every six candles, run two at a time: about
33 events a deal (orders submitted, accepted, filled and cancelled, buys, targets, exits).
Goals: rebuild at >= 50,000 events/s, and within 3x of the raw read.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test?schema=bench_projections"
CANDLES_PER_RUN = 30_000
SAW = (Decimal("1"), Decimal("0.985"), Decimal("0.97"), Decimal("0.955"), Decimal("0.99"),
       Decimal("1.02"))


def saw_rows(n: int) -> list[tuple]:
    rows = []
    for i in range(n):
        o, c = Decimal(100) * SAW[i % 6], Decimal(100) * SAW[(i + 1) % 6]
        rows.append((1_700_000_000_000 + i * 60_000, o, max(o, c) * Decimal("1.001"),
                     min(o, c) * Decimal("0.999"), c))
    return rows


def one_backtest(args: tuple[str, str]) -> tuple[int, Decimal, int]:
    url, seed = args
    from adapters.marketdata.csv_candles import candles_from_rows
    from application.bootstrap import run_backtest_on
    from domain.dca import DcaConfig

    config = DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(100),
                       safety_order_quote=Decimal(50), max_safety_orders=5,
                       price_deviation_pct=Decimal("0.8"), safety_volume_scale=Decimal("1.6"),
                       safety_step_scale=Decimal("1.3"), take_profit_pct=Decimal("1.2"))
    result = run_backtest_on(candles_from_rows(saw_rows(CANDLES_PER_RUN)), config,
                             fee_rate=Decimal("0.001"), balance=None, store_url=url,
                             seed=seed)
    return (result.summary["events"], result.summary["realized_pnl"],
            result.summary["deals_closed"])


def fill(url: str, events: int, have: int) -> None:
    per_run = 180_000  # about, on this market
    runs = max(1, -(-(events - have) // per_run))
    print(f"generating about {runs * per_run:,} events ({runs} backtests, two at a time)...",
          flush=True)
    started = time.perf_counter()
    seeds = [(url, f"bench-{have}-{n}") for n in range(runs)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        made = sum(e for e, _, _ in pool.map(one_backtest, seeds))
    print(f"  {made:,} events in {time.perf_counter() - started:.0f}s", flush=True)


def read_speed(app, batch: int) -> tuple[int, float]:
    """The library's own read of the notifications, page by page."""
    started, last, count = time.perf_counter(), 0, 0
    while page := app.recorder.select_notifications(start=last, limit=batch,
                                                   inclusive_of_start=False):
        count += len(page)
        last = page[-1].id
    return count, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--fresh", action="store_true", help="drop the schema's events first")
    args = parser.parse_args()
    figures = measure(args)
    report(args, *figures)
    return 0


def measure(args: argparse.Namespace) -> tuple:
    from application.bootstrap import open_trading
    from application.settings import _connect_kwargs, parse_database_url, prepare
    from projections.pnl import pnl_report
    from projections.reader import LogReader
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store

    database = parse_database_url(args.database)
    if args.fresh and database.kind == "postgres":
        import psycopg

        schema = database.env.get("POSTGRES_SCHEMA", "public")
        with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    prepare(database)
    app = open_trading(args.database)
    have = app.recorder.max_notification_id() or 0
    if have < args.events:
        app.close()
        fill(args.database, args.events, have)
        app = open_trading(args.database)
    store = open_view_store(database)
    try:
        count, read_s = read_speed(app, args.batch_size)
        reader, last, started = LogReader(app, store), 0, time.perf_counter()
        while page := reader.page(last, args.batch_size):
            last = page[-1][0]
        fast_s = time.perf_counter() - started
        started = time.perf_counter()
        rebuild(app, store, list(PROJECTIONS.values()), batch_size=args.batch_size,
                workers=args.workers, database_url=args.database)
        rebuild_s = time.perf_counter() - started
        pnl = pnl_report(store)
        audited = store.query(f"SELECT COUNT(*) FROM {store.q('audit_log')}")[0][0]
    finally:
        store.close()
        app.close()
    return count, read_s, fast_s, rebuild_s, pnl, audited


def report(args: argparse.Namespace, count: int, read_s: float, fast_s: float,
           rebuild_s: float, pnl: dict, audited: int) -> None:
    from projections.registry import PROJECTIONS

    read_rate, rebuild_rate = count / read_s, count / rebuild_s
    ratio = read_rate / rebuild_rate
    print(f"events in the log:                    {count:>12,}")
    print(f"read (library select_notifications):  {read_rate:>12,.0f} events/s  "
          f"({read_s:.1f}s)")
    print(f"read (projections' log reader):       {count / fast_s:>12,.0f} events/s  "
          f"({fast_s:.1f}s)")
    print(f"rebuild of all {len(PROJECTIONS)} projections:        {rebuild_rate:>12,.0f} "
          f"events/s  ({rebuild_s:.1f}s, {args.workers} process(es), batches of "
          f"{args.batch_size:,})")
    print(f"rebuild / read ratio:                 {ratio:>12.2f}x slower than the raw read")
    print(f"goal >= 50,000 events/s:              {'met' if rebuild_rate >= 50_000 else 'MISSED'}")
    print(f"goal within 3x of the raw read:       {'met' if ratio <= 3 else 'MISSED'}")
    print(f"check: {audited:,} audit rows, {pnl['deals_closed']:,} deals closed, "
          f"realized P/L {pnl['realized_pnl']}")


if __name__ == "__main__":
    sys.exit(main())
