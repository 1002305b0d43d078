"""Benchmark: rebuild the projections from a log of stored backtests, beside the speed of
merely reading the same log, in one run.

    .venv/bin/python scripts/bench_projections.py \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_projections] \
        [--events 500000] [--workers 2] [--batch-size 10000] [--fresh] [--no-breakdown]

The log is made (once; kept for the next runs unless --fresh) of backtests of a DCA bot on a
saw-tooth market that opens and closes a deal every six candles, run two at a time: about
33 events a deal (orders submitted, accepted, filled and cancelled, buys, targets, exits).

It prints the library's read (``select_notifications``) and the projections' log reader,
each projection rebuilt alone (events/s, and how many times slower than each read), then all
of them rebuilt together (naming those PostgreSQL computed in SQL beside the others,
``projections/sql_rebuild.py``: none unless ``TRADETAPE_SQL_REBUILD`` says), and a
MET/MISSED line for each goal: rebuild at >= 100,000 events/s, and within 2x of the
library's read. Progress goes to stderr. The machine may be
shared: compare the ratios of one run rather than figures of different runs.
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
GOAL_RATE = 100_000
GOAL_RATIO = 2.0
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


def library_read(app, batch: int) -> tuple[int, float]:
    """The library's own read of the notifications, page by page."""
    started, last, count = time.perf_counter(), 0, 0
    while page := app.recorder.select_notifications(start=last, limit=batch,
                                                   inclusive_of_start=False):
        count += len(page)
        last = page[-1].id
    return count, time.perf_counter() - started


def our_read(app, store, batch: int) -> float:
    from projections.reader import LogReader

    reader, last, started = LogReader(app, store), 0, time.perf_counter()
    while page := reader.page(last, batch):
        last = page[-1][0]
    return time.perf_counter() - started


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Rebuild the projections from a log of stored backtests and compare with "
                    "the speed of reading the same log.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_URL, metavar="URL",
                        help="where the log is (made if it holds fewer than --events "
                             "events); a PostgreSQL URL without ?schema= uses the schema "
                             "public")
    parser.add_argument("--events", type=int, default=500_000, metavar="N",
                        help="the least number of events the log must hold: backtests are "
                             "stored until it does (about 180,000 events each)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="the most processes the rebuild of all projections may use: "
                             "it measures whether sharing them out is faster (1: never)")
    parser.add_argument("--batch-size", type=int, default=10_000, metavar="N",
                        help="events per page read and per transaction written")
    parser.add_argument("--fresh", action="store_true",
                        help="drop the schema (its events and views) and make a new log "
                             "first; with no ?schema= in the URL, the schema public")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip rebuilding each projection alone")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress lines (events/s, time left) on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report(args, measure(args))
    return 0


def drop_schema(database) -> None:
    """Drop the URL's schema with everything in it, and make it again empty (``prepare``
    makes only a named schema: public would be left missing)."""
    import psycopg
    from psycopg import sql

    from application.settings import _connect_kwargs

    schema = database.env.get("POSTGRES_SCHEMA") or "public"
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def measure(args: argparse.Namespace) -> dict:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url, prepare
    from projections.pnl import pnl_report
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store

    database = parse_database_url(args.database)
    if args.fresh and database.kind == "postgres":
        drop_schema(database)
    prepare(database)
    app = open_trading(args.database)
    have = app.recorder.max_notification_id() or 0
    if have < args.events:
        app.close()
        fill(args.database, args.events, have)
        app = open_trading(args.database)
    store = open_view_store(database)
    figures: dict = {"alone": {}}
    try:
        if not args.no_breakdown:
            for name, cls in PROJECTIONS.items():
                figures["alone"][name] = timed_rebuild(app, store, [cls], args, 1)[0]
        count, figures["library_s"] = library_read(app, args.batch_size)
        figures["count"], figures["ours_s"] = count, our_read(app, store, args.batch_size)
        figures["all_s"], figures["plan"] = timed_rebuild(
            app, store, list(PROJECTIONS.values()), args, args.workers)
        # Read again after: the machine is shared, its load changes within a run.
        figures["library_s"] = (figures["library_s"] + library_read(app, args.batch_size)[1]) / 2
        figures["ours_s"] = (figures["ours_s"] + our_read(app, store, args.batch_size)) / 2
        figures["pnl"] = pnl_report(store)
        figures["audited"] = store.query(f"SELECT COUNT(*) FROM {store.q('audit_log')}")[0][0]
    finally:
        store.close()
        app.close()
    return figures


def timed_rebuild(app, store, classes, args: argparse.Namespace, workers: int) -> tuple:
    from projections.progress import TextProgress
    from projections.rebuild import rebuild

    label = "rebuild " + ("+".join(c.name for c in classes) if len(classes) < 3 else "all")
    progress = None if args.no_progress else TextProgress(label)
    plans = []
    started = time.perf_counter()
    rebuild(app, store, classes, batch_size=args.batch_size, workers=workers,
            database_url=args.database, on_progress=progress, on_plan=plans.append)
    seconds = time.perf_counter() - started
    if progress is not None:
        progress.done()
    return seconds, plans[0] if plans else None


def print_shares(plan) -> None:
    """Where the rebuild of all of them spends its Python, as its measured first part saw
    it (each projection's handlers timed within the run of all, ledgers sharing books as
    one): what to cut first. By the clock (what the split is chosen by: a busy machine, and
    the reader and writer threads holding the interpreter meanwhile, inflate every figure
    alike; the shares are what compare) and in the main thread's processor time (what
    compares between runs and versions)."""
    if not plan.measured_events:
        return
    units = {"decoding (shared)": plan.decode, **plan.costs}
    cpu = {"decoding (shared)": plan.cpu.get("", 0.0),
           **{name: plan.cpu.get(name, 0.0) for name in plan.costs}}
    total = sum(units.values()) or 1e-9
    per = 1e6 / plan.measured_events
    print(f"  its Python over the first {plan.measured_events:,} events, by projection "
          f"(clock, share, processor):")
    for name, seconds in sorted(units.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<24} {seconds * per:7.1f} us/event {100 * seconds / total:5.1f}% "
              f"{cpu[name] * per:7.1f} us/event of processor")


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def report(args: argparse.Namespace, f: dict) -> None:
    count = f["count"]
    library, ours = count / f["library_s"], count / f["ours_s"]
    print(f"events in the log:                        {count:>10,}")
    print(f"read (library select_notifications):      {library:>10,.0f} events/s "
          f"({f['library_s']:.1f}s)")
    print(f"read (projections' log reader):           {ours:>10,.0f} events/s "
          f"({f['ours_s']:.1f}s)")
    if f["alone"]:
        print("each projection rebuilt alone (one process):")
        print(f"  {'projection':<12} {'events/s':>10} {'seconds':>8} {'x library read':>15} "
              f"{'x our reader':>13}")
        for name, seconds in f["alone"].items():
            rate = count / seconds
            print(f"  {name:<12} {rate:>10,.0f} {seconds:>8.1f} {library / rate:>15.2f} "
                  f"{ours / rate:>13.2f}")
    rate = count / f["all_s"]
    plan = f["plan"]
    print(f"rebuild of all projections:               {rate:>10,.0f} events/s "
          f"({f['all_s']:.1f}s, batches of {args.batch_size:,})")
    if plan is not None:
        print(f"  processes: {' | '.join('+'.join(g) for g in plan.groups)} "
              f"({plan.describe()})")
        if plan.in_sql:  # no Python of theirs in the shares below
            print(f"  built by PostgreSQL, beside them: {', '.join(plan.in_sql)}")
        print_shares(plan)
    print(f"  {library / rate:.2f}x slower than the library's read, "
          f"{ours / rate:.2f}x slower than our log reader")
    print(f"goal rebuild >= {GOAL_RATE:,} events/s:          {verdict(rate >= GOAL_RATE)}")
    print(f"goal within {GOAL_RATIO:g}x of the library's read:   "
          f"{verdict(library / rate <= GOAL_RATIO)}")
    pnl = f["pnl"]
    print(f"check: {f['audited']:,} audit rows, {pnl['deals_closed']:,} deals closed, "
          f"realized P/L {pnl['realized_pnl']}")


if __name__ == "__main__":
    sys.exit(main())
