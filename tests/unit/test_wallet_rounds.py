"""The wallet monitor's schedule does not run a round right after the start's: with 1,000
accounts that round loaded every account again, one at a time, under the paper runner's
lock, while the server's first candle waited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.funding import Funding
from application.paper_trading import PaperTrading
from application.wallet_monitor import WalletMonitor

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_round_is_due_a_period_after_the_last_one() -> None:
    trading = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("rounds"))
    for n in range(3):
        account = trading.open_account(owner_id=f"u{n}", exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("100"), actor=f"u{n}")
    paper = PaperTrading(
        trading,
        trading.ids,
        lambda pair, quote, base: PaperExchange(pair, quote_balance=quote, base_balance=base),
    )
    monitor = WalletMonitor(Funding(trading, paper), paper, every_seconds=60)
    seen: list[object] = []
    observe = monitor.observe
    monitor.observe = lambda account_id, *args: (
        seen.append(account_id) or observe(account_id, *args)
    )
    monitor.run(T0)  # the start's round
    assert len(seen) == 3
    monitor.run_due(T0 + timedelta(seconds=1))  # the schedule's first, just after
    assert len(seen) == 3
    monitor.run_due(T0 + timedelta(seconds=60))
    assert len(seen) == 6
    assert monitor.state.last_run_at == T0 + timedelta(seconds=60)
