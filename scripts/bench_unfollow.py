"""Benchmark: what an engine worker's stop (or a share given up) costs per bot let go, in
processor time (a loaded machine's wall clock is noise).

    .venv/bin/python scripts/bench_unfollow.py [--accounts 10000] [--per-account 1]

Paper bots are seeded in memory (one paper account per user, ``--per-account`` bots each,
all on BTC/USDT: one market per account), a runner follows them all (``resume``), then
every bot is unfollowed and released, as ``LeaseManager.stop`` does. Printed: seeding and
following for scale, then the release's processor time in all and per bot.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.clock import SequentialIds, SteppingClock  # noqa: E402
from adapters.exchanges.paper import PaperExchange  # noqa: E402
from application.bootstrap import open_trading  # noqa: E402
from application.paper_trading import PaperTrading  # noqa: E402
from domain.dca import DcaConfig  # noqa: E402

BOT = DcaConfig.from_mapping({
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 2, "price_deviation_pct": "1", "safety_volume_scale": "1",
    "safety_step_scale": "1", "take_profit_pct": "1"})


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--per-account", type=int, default=1)
    args = parser.parse_args()
    trading = open_trading("memory", clock=SteppingClock(
        datetime(2026, 1, 1, tzinfo=UTC), timedelta(seconds=1)), ids=SequentialIds("bench"))
    began = time.process_time()
    for a in range(args.accounts):
        owner = f"user{a}"
        account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
        for b in range(args.per_account):
            bot_id = trading.create_bot(owner_id=owner, name=f"bot {b}", config=BOT,
                                        exchange_account_id=str(account))
            trading.start_bot(bot_id, actor=owner)
    seeded = time.process_time()
    paper = PaperTrading(trading, trading.ids, venue)
    bots = paper.resume()
    followed = time.process_time()
    for bot_id in bots:
        paper.unfollow(bot_id, release=True)
    released = time.process_time()
    assert not paper.bot_ids
    print(f"bots {len(bots)} in {args.accounts} markets: seed {seeded - began:.2f} s, "
          f"follow {followed - seeded:.2f} s, release {released - followed:.3f} s "
          f"({(released - followed) / len(bots) * 1e6:.1f} us a bot), processor time")


if __name__ == "__main__":
    main()
