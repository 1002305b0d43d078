"""maxExposureQuote counts a market buy a live exchange has accepted but not filled yet, at
the price it was judged at, in every process: a bot's base order in the engine that trades
it (its quote over its amount), a position's market entry wherever the user's limits are
judged (the price its ``Position.OrderPlaced`` records). Before, the engine counted priced
orders only, and a position's market entry counted only in the process that sent it, until
its restart: a buy judged elsewhere meanwhile took the same room."""

from __future__ import annotations

from decimal import Decimal

import pytest

import tests.integration.test_risk_limits as risk_world
import tests.integration.test_risk_positions_workers as positions_workers
from adapters.exchanges.paper import PaperExchange
from application.positions import Positions
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import ExchangeOrder, OrderRequest
from domain.positions import Position
from domain.risk import RiskLimitError
from tests.integration.test_risk_committed_buys import PRICE, opened, world_with_positions
from tests.integration.test_risk_limits import BOT, candles
from tests.integration.test_risk_limits_workers import feed, most_open_deals, seed
from tests.integration.test_risk_pause_leased import RiskWorker
from tests.integration.test_risk_positions_workers import ApiProcess, positions_of

ONE_BUY = {**BOT, "max_safety_orders": 0}  # a deal of its base order alone: 100

__all__ = ["candles"]  # (the module's candles fixture)


class AnswersLater(PaperExchange):
    """A live exchange as the engine sees it between a market buy's request and its fill:
    the buy is accepted, its fill not heard yet (other orders as on paper)."""

    def create_order(self, request: OrderRequest) -> ExchangeOrder:
        if request.type is OrderType.MARKET and request.side is OrderSide.BUY:
            return ExchangeOrder(f"later-{request.client_order_id}", request.client_order_id,
                                 OrderStatus.ACCEPTED)
        return super().create_order(request)


class LiveAnswersLater(AnswersLater):
    """The same with a live venue's precision (``sized``): positions record the price a
    market entry was judged at where it may rest."""

    def sized(self, pair: str, side, amount: Decimal, price: Decimal | None):
        return amount, price


def answers_later(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return AnswersLater(pair, quote_balance=quote, base_balance=base)


def live_answers_later(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return LiveAnswersLater(pair, quote_balance=quote, base_balance=base)


def test_a_base_order_not_filled_yet_counts_its_quote_in_the_engine(
        candles, persistent_store_url, monkeypatch):
    """Two bots of 100 base orders, maxExposureQuote 150: the first deal's base order is
    accepted, not filled; it commits its 100, so the second bot's 100 would make 200."""
    monkeypatch.setattr(risk_world, "_venue", answers_later)
    world = risk_world.World(persistent_store_url, configs=(BOT, BOT))
    world.limit(maxExposureQuote="150")
    world.feed(candles, 1)
    assert len(world.events("Deal.Opened")) == 1
    (refusal,) = world.events("Bot.RiskLimitReached")
    assert refusal.limit == "maxExposureQuote"
    assert world.risk.view("u1").exposure.committed_quote == Decimal("100")
    world.trading.close()


def test_a_position_counts_a_bots_base_order_not_filled_yet(candles, persistent_store_url,
                                                           monkeypatch):
    """The same base order of 100 judged by a position's check in that process: with
    maxExposureQuote 150, a position of 60 is refused (160), one of 50 opens (150)."""
    monkeypatch.setattr(risk_world, "_venue", answers_later)
    world, positions, account = world_with_positions(persistent_store_url, configs=(BOT,),
                                                    priced=False)
    world.limit(maxExposureQuote="150")
    world.feed(candles, 1)
    with pytest.raises(RiskLimitError) as refused:
        opened(positions, account, quote_amount=Decimal("60"), limit_price=Decimal("1000"))
    assert refused.value.limit == "maxExposureQuote"
    assert opened(positions, account, quote_amount=Decimal("50"),
                  limit_price=Decimal("1000")).is_open
    world.trading.close()


def test_a_live_market_entry_not_filled_yet_counts_after_a_restart(persistent_store_url,
                                                                   monkeypatch):
    """A market entry of 0.002 judged at 90,000 (180) rests on a live venue: counted at
    180 before and after the process restarts, so a limit entry of 150 passes 300."""
    monkeypatch.setattr(risk_world, "_venue", live_answers_later)
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxExposureQuote="300")
    entry = opened(positions, account, amount=Decimal("0.002"))
    assert entry.units == 0 and entry.is_open  # accepted, not filled
    assert world.risk.view("u1").exposure.committed_quote == Decimal("0.002") * PRICE
    world.restart(persistent_store_url)
    again = Positions(world.trading, world.runner,
              risk_check=world.risk.for_positions())
    world.risk.add_exposure(again.exposure_of)
    assert world.risk.view("u1").exposure.committed_quote == Decimal("0.002") * PRICE
    world.runner.on_candle("BTC/USDT", 60_000, *(PRICE,) * 4, world.trading.clock.now())
    with pytest.raises(RiskLimitError) as refused:
        opened(again, account, quote_amount=Decimal("150"), limit_price=Decimal("1000"))
    assert refused.value.limit == "maxExposureQuote" and "from 180" in str(refused.value)
    world.trading.close()


def test_a_resting_market_entry_on_an_api_process_counts_in_a_workers_deal_check(
        candles, postgres_url, monkeypatch):
    """An api process sends a market entry of 0.002 at 90,000 (180) to a live venue that
    has not filled it; the engine worker trading the user's two bots judges their deals
    (100 each, no safety order) with maxExposureQuote 300: the first makes 280, the second
    would make 380. So exactly one deal opens (both before: the entry counted nothing
    there, 200)."""
    seed(postgres_url, accounts=1, per_account=2, limits={"maxExposureQuote": "300"},
         config=ONE_BUY)
    worker = RiskWorker(postgres_url, "one")
    monkeypatch.setattr(positions_workers, "venue", live_answers_later)
    api = ApiProcess(postgres_url)
    try:
        positions_of(worker)  # positions count beside deals, as the runtime wires them
        worker.leases.tick()
        account = worker.trading.get_bot(next(iter(worker.paper.bot_ids))).exchange_account_id
        api_positions = positions_of(api)
        api.paper.on_candle("BTC/USDT", 0, *(PRICE,) * 4, api.trading.clock.now())
        entry = api_positions.open_position("u1", exchange_account_id=account,
                                            pair="BTC/USDT", amount=Decimal("0.002"))
        assert api.trading.load(entry.id, Position).units == 0  # rests
        feed((worker,), candles, range(1))
        assert most_open_deals(postgres_url) == (1, 1)
    finally:
        worker.close()
        api.close()
