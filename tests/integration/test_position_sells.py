"""A sell of everything a deal holds sells what is held: bots sharing one paper account
hold their units in one balance, where 28-digit sums of amounts of different sizes round
differently from each deal's own sum, and an exit was refused for a last-digit difference
("needs 0.005982160557510129962607636381 BTC, …380 free")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from domain.dca import DcaConfig
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest
from tests.stubs import CONFIG_INPUT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAIR = "BTC/USDT"


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def bot_config(base_quote: str, take_profit: str) -> DcaConfig:
    return DcaConfig.from_mapping({**CONFIG_INPUT, "base_order_quote": base_quote,
                                   "safety_order_quote": base_quote, "max_safety_orders": 2,
                                   "price_deviation_pct": "0.3", "take_profit_pct": take_profit})


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


def shared_account(url: str, clock):
    """Three bots on one paper account: units of very different sizes, bought and sold at
    different times, in one balance."""
    trading = open_trading(url, clock=clock, ids=SequentialIds("positions"))
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("1000000"), actor="u1")
    configs = [bot_config("0.7", "0.3"), bot_config("90000", "0.1"), bot_config("13.3", "0.2")]
    for n, config in enumerate(configs):
        bot_id = trading.create_bot(owner_id="u1", name=f"bot {n}", config=config,
                                    exchange_account_id=str(account))
        trading.start_bot(bot_id, actor="u1")
    return trading


def feed(trading, runner, candles, clock, start: int, end: int) -> None:
    for i in range(start, end):
        o, h, low, c = candles.exact(i)
        runner.on_candle(PAIR, int(candles.timestamps[i]), o, h, low, c, clock.now())


def runner_of(trading, seed: str = "runner") -> PaperTrading:
    runner = PaperTrading(trading, SequentialIds(seed), venue)
    runner.resume()
    return runner


def exits(trading) -> list[tuple]:
    return [(e.originator_id, e.reason, e.amount, e.price) for e in (
        trading.mapper.to_domain_event(n) for n in read_log(trading)
        if n.topic.endswith("Deal.Closed"))]


def test_bots_sharing_an_account_sell_exactly_what_each_deal_holds(candles):
    clock = SteppingClock(T0, timedelta(seconds=1))
    trading = shared_account("memory", clock)
    feed(trading, runner_of(trading), candles, clock, 0, 2000)

    rejected = [trading.mapper.to_domain_event(n).reason for n in read_log(trading)
                if n.topic.endswith("Order.Rejected")]
    assert rejected == []
    assert len(exits(trading)) >= 30  # the bots closed deals, over and over


def test_after_a_restart_each_open_deal_still_sells_exactly_what_it_holds(tmp_path, candles):
    clock = SteppingClock(T0, timedelta(seconds=1))
    straight = shared_account("memory", clock)
    feed(straight, runner_of(straight), candles, clock, 0, 2000)
    clock = SteppingClock(T0, timedelta(seconds=1))
    url = f"sqlite:///{tmp_path / 'restarted.sqlite'}"
    restarted = shared_account(url, clock)
    for start in range(0, 2000, 50):  # a restart every 50 candles, mid-deal more often than not
        feed(restarted, runner_of(restarted, f"runner-{start}"), candles, clock, start,
             start + 50)
        restarted.close()
        restarted = open_trading(url, clock=clock, ids=SequentialIds(f"positions-{start}"))

    assert [x[1:] for x in exits(restarted)] == [x[1:] for x in exits(straight)]


def test_a_sell_of_a_position_sells_exactly_what_it_bought_whatever_else_is_held():
    venue = PaperExchange(PAIR, quote_balance=Decimal("1000000"))
    venue.move_to(Decimal("91234.57"))
    small = Decimal("0.7") / Decimal("91234.57")  # 28 digits down to 1e-33
    large = Decimal("90000") / Decimal("91234.57")  # 28 digits down to 1e-27
    for client, amount, position in (("a1", small, "deal-a"), ("b1", large, "deal-b")):
        bought = venue.create_order(OrderRequest(client, PAIR, OrderSide.BUY, OrderType.MARKET,
                                                 amount, position=position))
        assert bought.status is OrderStatus.FILLED
    # The large position leaves first; the small one's last digits were rounded out of the
    # shared balance, but a sell of the whole position sells it.
    for client, amount, position in (("b2", large, "deal-b"), ("a2", small, "deal-a")):
        sold = venue.create_order(OrderRequest(client, PAIR, OrderSide.SELL, OrderType.MARKET,
                                               amount, position=position))
        assert (sold.status, sold.reason) == (OrderStatus.FILLED, None)
        assert sold.trades[0].amount == amount
    over = venue.create_order(OrderRequest("a3", PAIR, OrderSide.SELL, OrderType.MARKET,
                                           small, position="deal-a"))
    assert over.status is OrderStatus.REJECTED  # sold once: nothing more is held for it
