"""Benchmark: what one small follower batch costs the ledgers (``pnl``, ``leaderboard``,
``equity``, books shared) when ``--bots`` bots each hold an open deal of one pair.

    .venv/bin/python scripts/bench_unrealized.py [--bots 10000] [--repeat 5]

The books are filled in memory from made-up facts (one owner per 10 bots, each bot one
open deal bought at 100) and one step of one bot; then the next step is applied as a
follower batch: a buy order of another bot submitted and filled at a new price, and that
deal's fill (``--new-minute``: the fill is the first of its minute, when equity marks every
holder of the pair again). Printed:
processor time (``time.process_time``: the machine is shared) of applying the step,
ending the batch and freezing its rows, the least of ``--repeat`` rounds, and how many row
changes the batch writes. No database.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAIR = "BTC/USDT"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--bots", type=int, default=10_000, metavar="N")
    parser.add_argument("--repeat", type=int, default=5, metavar="N")
    parser.add_argument("--new-minute", action="store_true",
                        help="the step's fill is the first of its minute")
    return parser.parse_args(argv)


def _fact(position: int, kind: str, oid: str, minute: int, step: str, **fields):
    from projections.facts import Fact

    state = {"timestamp": {"_type_": "datetime_iso",
                           "_data_": f"2026-12-01T10:{minute:02d}:30+00:00"},
             "correlation_id": step, **fields}
    return Fact(position, oid, 1, f"domain:{kind}", state, b"")


def _dec(text: str) -> dict:
    return {"_type_": "decimal_str", "_data_": text}


def _uid(value: str) -> dict:
    return {"_type_": "uuid_hex", "_data_": value.replace("-", "")}


def setup_facts(bots: int) -> list:
    """Every bot first (equity maps owners to bots again after a bot event), then deals."""
    facts = []
    for i in range(bots):
        facts.append(_fact(len(facts) + 1, "Bot.Created", str(uuid.UUID(int=i + 1)), 0,
                           f"setup-{i}", owner_id=f"owner-{i // 10}", name=f"bot {i}",
                           config={"_data_": {"pair": PAIR}}))
    for i in range(bots):
        bot, deal = str(uuid.UUID(int=i + 1)), str(uuid.UUID(int=10**9 + i))
        for kind, fields in (
                ("Deal.Opened", {"bot_id": _uid(bot), "owner_id": f"owner-{i // 10}",
                                 "pair": PAIR}),
                ("Deal.BuyFilled", {"price": _dec("100"), "amount": _dec("0.5"),
                                    "fee": _dec("0.05"), "safety_order": 0})):
            facts.append(_fact(len(facts) + 1, kind, deal, 0, f"setup-{i}", **fields))
    return facts


def step_facts(start: int, minute: int, i: int, price: str) -> list:
    """Bot ``i``'s safety order: submitted, filled at ``price``, and its deal's fill."""
    bot, deal, order = str(uuid.UUID(int=i + 1)), str(uuid.UUID(int=10**9 + i)), str(
        uuid.UUID(int=2 * 10**9 + start))
    step = f"step-{start}"
    return [
        _fact(start + 1, "Order.Submitted", order, minute, step, bot_id=_uid(bot),
              price=_dec(price), amount=_dec("0.5"), side={"_data_": "buy"},
              type={"_data_": "limit"}, pair=PAIR),
        _fact(start + 2, "Order.Filled", order, minute, step, price=_dec(price),
              amount=_dec("0.5")),
        _fact(start + 3, "Deal.BuyFilled", deal, minute, step, price=_dec(price),
              amount=_dec("0.5"), fee=_dec("0.045"), safety_order=1)]


def _apply(projections: list, facts: list) -> list:
    from projections.tables import Changes

    outs = [Changes(p.tables) for p in projections]
    routes: dict[str, list] = {}  # as the runner routes: each kind's handlers once
    for fact in facts:
        route = routes.get(fact.kind)
        if route is None:
            route = routes[fact.kind] = [
                (h, out) for p, out in zip(projections, outs, strict=True)
                if (h := p.route(fact.kind)) is not None]
        for handler, out in route:
            handler(fact, out)
    return outs


def one_round(bots: int, new_minute: bool) -> tuple[float, int]:
    from projections.registry import PROJECTIONS
    from projections.shared_books import share_books

    projections = [PROJECTIONS[name]() for name in ("pnl", "leaderboard", "equity")]
    leader = share_books(projections)
    projections.sort(key=lambda p: p is not leader)
    setup = setup_facts(bots)
    for facts in (setup, step_facts(len(setup), 0, 1, "95")):  # books, then a first step
        outs = _apply(projections, facts)
        for p, out in zip(projections, outs, strict=True):
            p.end_batch(out)
    step = step_facts(len(setup) + 3, 1 if new_minute else 0, 0, "90")
    started = time.process_time()
    outs = _apply(projections, step)
    rows = 0
    for p, out in zip(projections, outs, strict=True):
        p.end_batch(out)
        rows += sum(len(f.inserts) + len(f.upserts) + len(f.gone) + len(f.patches)
                    for f in out.freeze())
    return time.process_time() - started, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    best, rows = min(one_round(args.bots, args.new_minute) for _ in range(args.repeat))
    print(f"bots {args.bots}  new minute {args.new_minute}  follower batch "
          f"{best * 1000:.2f} ms processor time  {rows} row changes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
