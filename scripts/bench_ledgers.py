"""Benchmark: the Python work of the ledgers (``pnl``, ``leaderboard``, ``equity``) over a
fixed slice of a stored log, in processor time, so that two versions compare on a busy
machine (run them back to back, alternating).

    .venv/bin/python scripts/bench_ledgers.py --database URL [--events 60000] \
        [--repeat 3] [--only pnl,leaderboard,equity] [--digest] [--as-rebuilt] [--decoding]

The log's first ``--events`` rows are read once; each round decodes them afresh (untimed),
then applies them page by page (``--batch-size``) to the ledgers as a rebuild does (books
shared when more than one runs), ends each batch and freezes its row changes (timed: the
main thread's work; ``--as-rebuilt`` decodes each row just before its handlers, timed with
them, as a rebuild's runner does). ``--digest`` prints a hash of every batch's frozen rows:
the same hash means the same rows written (each batch's rows sorted, so only order may
differ).
Make the log with ``scripts/bench_projections.py``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Processor time of the ledgers' Python work over a slice of a log.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", required=True, metavar="URL",
                        help="a store holding a log (bench_projections.py makes one)")
    parser.add_argument("--events", type=int, default=60_000, metavar="N",
                        help="how many of the log's first events to apply")
    parser.add_argument("--batch-size", type=int, default=10_000, metavar="N",
                        help="events per batch (end_batch and freeze after each)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="rounds; the least processor time is printed")
    parser.add_argument("--only", default="pnl,leaderboard,equity", metavar="NAMES",
                        help="the ledgers to run (comma-separated)")
    parser.add_argument("--digest", action="store_true",
                        help="print a hash of the rows every batch writes")
    parser.add_argument("--rows", type=Path, metavar="FILE",
                        help="keep the rows read in this file (pickle) and read them from it "
                             "next time")
    parser.add_argument("--converted", action="store_true",
                        help="convert the Decimal fields (price, amount, fee, realized_pnl) "
                             "before timing, as another projection asking first would")
    parser.add_argument("--decoding", action="store_true",
                        help="also time decoding the rows into facts (printed apart)")
    parser.add_argument("--as-rebuilt", action="store_true",
                        help="decode each row just before applying it, timed with it (a "
                             "rebuild's own path: a page decoded first, as --decoding and the "
                             "default time it, keeps 10,000 facts alive and costs more)")
    parser.add_argument("--profile", action="store_true",
                        help="one round under cProfile instead: where the time goes")
    return parser.parse_args(argv)


def read_rows(url: str, events: int, batch: int, cache: Path | None) -> tuple[list, object]:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.reader import LogReader
    from projections.store import open_view_store

    app = open_trading(url)
    store = open_view_store(parse_database_url(url))
    try:
        if cache is not None and cache.exists():
            rows = pickle.loads(cache.read_bytes())
            if len(rows) == events:
                return rows, app.mapper
        reader, rows = LogReader(app, store), []
        while len(rows) < events and (page := reader.page(rows[-1][0] if rows else 0, batch)):
            rows.extend(page)
        rows = [tuple(row) for row in rows[:events]]
        if cache is not None:
            cache.write_bytes(pickle.dumps(rows))
        return rows, app.mapper
    finally:
        store.close()
        app.close()


CONVERTED = ("price", "amount", "fee", "realized_pnl")


def decoded(rows: list, mapper, batch: int, converted: bool = False) -> list[list]:
    """The rows as facts, page by page (each round its own: a fact keeps the Decimals it
    converted)."""
    from projections.facts import FactDecoder

    decode = FactDecoder(mapper)
    pages = [[(row[3], decode(row)) for row in rows[start:start + batch]]
             for start in range(0, len(rows), batch)]
    if converted:  # as when another projection of the rebuild asked first
        for page in pages:
            for _, fact in page:
                for name in CONVERTED:
                    if type(fact.state.get(name)) is dict:
                        fact.dec(name)
    return pages


def one_round(pages: list[list], names: list[str], digest, decode=None) -> tuple[float, float]:
    """``pages`` of (topic, fact); or, with ``decode``, of stored rows, each decoded just
    before its handlers run (timed with them), as a rebuild's runner does."""
    from projections.ledger import Ledger
    from projections.registry import PROJECTIONS
    from projections.shared_books import share_books
    from projections.tables import Changes

    projections = [PROJECTIONS[name]() for name in names]
    leader = share_books([p for p in projections if isinstance(p, Ledger)])
    if leader is not None:  # the leader applies first, as the runner orders them
        projections.sort(key=lambda p: p is not leader)
    applying = ending = 0.0
    clock = time.process_time
    for page in pages:
        outs = [Changes(p.tables) for p in projections]
        routes: dict = {}
        started = clock()
        for item in page:
            topic = item[3] if decode is not None else item[0]
            route = routes.get(topic)
            if route is None:
                kind = topic.partition(":")[2]
                route = routes[topic] = [(h, out) for p, out in zip(projections, outs, strict=True)
                                         if (h := p.route(kind)) is not None]
            if not route:
                continue
            fact = decode(item) if decode is not None else item[1]
            for handler, out in route:
                handler(fact, out)
        middle = clock()
        frozen = []
        for p, out in zip(projections, outs, strict=True):
            p.end_batch(out)
            frozen.append(out.freeze())
        ending += clock() - middle
        applying += middle - started
        if digest is not None:
            for tables in frozen:
                for f in tables:
                    digest.update(repr((f.table.name, sorted(map(repr, f.gone)),
                                        sorted(map(repr, f.inserts)),
                                        sorted(map(repr, f.upserts)),
                                        sorted(map(repr, f.patches)))).encode())
    return applying, ending


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows, mapper = read_rows(args.database, args.events, args.batch_size, args.rows)
    if args.profile:
        import cProfile
        import pstats

        gc.disable()
        profile = cProfile.Profile()
        profile.runcall(one_round, decoded(rows, mapper, args.batch_size, args.converted),
                        [n for n in args.only.split(",") if n], None)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return 0
    names = [name for name in args.only.split(",") if name]  # none: the baseline
    best = best_decoding = None
    for n in range(args.repeat):
        gc.collect()  # a rebuild runs with the collector paused (``collector_paused``)
        gc.disable()
        digest = hashlib.sha256() if args.digest and n == 0 else None
        started = time.process_time()
        if args.as_rebuilt:
            from projections.facts import FactDecoder

            pages = [rows[start:start + args.batch_size]
                     for start in range(0, len(rows), args.batch_size)]
            decoding, decode = 0.0, FactDecoder(mapper)
        else:
            pages = decoded(rows, mapper, args.batch_size, args.converted)
            decoding, decode = time.process_time() - started, None
        applying, ending = one_round(pages, names, digest, decode)
        gc.enable()
        total = applying + ending
        if args.decoding:
            print(f"round {n + 1}: decoding {decoding * 1e6 / len(rows):.2f} µs/event",
                  flush=True)
            best_decoding = decoding if n == 0 else min(best_decoding, decoding)
        print(f"round {n + 1}: apply {applying * 1e6 / len(rows):.2f} µs/event, end of "
              f"batches and freeze {ending * 1e6 / len(rows):.2f}, total "
              f"{total * 1e6 / len(rows):.2f} ({total:.3f} s processor)", flush=True)
        if digest is not None:
            print(f"digest {digest.hexdigest()}", flush=True)
        best = total if best is None else min(best, total)
    print(f"{'+'.join(names)}: {len(rows):,} events, best {best * 1e6 / len(rows):.2f} "
          "µs/event of processor time")
    if args.decoding:
        print(f"decoding: best {best_decoding * 1e6 / len(rows):.2f} µs/event of processor time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
