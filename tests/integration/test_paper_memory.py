"""A paper server runs for months: what its venues and its order index hold in memory stays
bounded by what is open (plus a fixed window of recently finished orders), however many
deals its bots have closed, and trading is the same to the byte as when nothing was
forgotten."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.exchanges import paper
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.paper_log import PaperLog
from application.replay import read_log
from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest
from tests.integration.test_paper_trading import World

WINDOW = 3  # finished orders a venue keeps in these tests: far fewer than a run places


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


def _submitted(trading) -> list:
    return [trading.mapper.to_domain_event(n) for n in read_log(trading)
            if n.topic.endswith("Order.Submitted")]


def _run(tmp_path, candles, name: str, upto: int) -> World:
    world = World(f"sqlite:///{tmp_path / name}", "m")
    world.feed(candles, 0, upto)
    return world


def test_after_many_deals_memory_holds_the_open_deal_and_a_window_only(
        tmp_path, candles, monkeypatch):
    monkeypatch.setattr(paper, "RECENT_FINISHED_ORDERS", WINDOW)
    world = _run(tmp_path, candles, "long.sqlite", 1800)
    bot = world.trading.get_bot(world.bot_id)
    placed = _submitted(world.trading)
    assert bot.deals_finished >= 3 and bot.open_deal_id is not None
    open_deal = [e.originator_id for e in placed if e.deal_id == bot.open_deal_id]
    assert len(placed) > len(open_deal) + WINDOW  # far more were placed than are kept

    index = world.runner._index()
    # every order of the open deal is still listed, in placement order...
    assert index.orders_of(bot.open_deal_id) == open_deal
    # ...and the closed deals' orders are forgotten: nothing else is held
    assert index.remembered() == len(open_deal)
    market = next(iter(world.runner._markets.values()))
    resting = market.venue.fetch_open_orders()
    assert resting  # the open deal's ladder rests
    assert market.venue.remembered() == len(resting) + WINDOW

    # the index kept current equals one read from the log afresh (rebuild == incremental)
    fresh = PaperLog(world.trading)
    assert fresh.remembered() == index.remembered()
    assert fresh.orders_of(bot.open_deal_id) == open_deal
    assert fresh.open_orders_of(bot.open_deal_id) == index.open_orders_of(bot.open_deal_id)
    account = bot.exchange_account_id
    assert fresh.fills(account, "BTC/USDT") == index.fills(account, "BTC/USDT")


def test_forgetting_finished_orders_writes_the_same_events_to_the_byte(
        tmp_path, candles, monkeypatch):
    kept = _run(tmp_path, candles, "kept.sqlite", 1200)
    monkeypatch.setattr(paper, "RECENT_FINISHED_ORDERS", 1)
    forgetting = _run(tmp_path, candles, "forgetting.sqlite", 1200)
    assert kept.trading.get_bot(kept.bot_id).deals_finished >= 2

    def log(world):
        return [(n.topic, n.originator_id, n.originator_version, n.state)
                for n in read_log(world.trading)]

    assert log(forgetting) == log(kept)


def _venue() -> PaperExchange:
    venue = PaperExchange("BTC/USDT", quote_balance=Decimal("100000"))
    venue.move_to(Decimal("100"))
    return venue


def _buy(client_id: str, price: str = "90") -> OrderRequest:
    return OrderRequest(client_id, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT,
                        Decimal("1"), Decimal(price))


def test_a_retried_placement_returns_the_same_order_and_places_nothing_twice(monkeypatch):
    monkeypatch.setattr(paper, "RECENT_FINISHED_ORDERS", WINDOW)
    venue = _venue()
    first = venue.create_order(_buy("a"))
    assert venue.create_order(_buy("a")) == first  # resting: the same order
    assert venue.fetch_balance()["USDT"].locked == Decimal("90.09")  # locked once

    venue.move_to(Decimal("89"))  # it fills
    filled = venue.fetch_order(first.exchange_order_id, "BTC/USDT")
    assert filled.status is OrderStatus.FILLED
    balance = venue.fetch_balance()
    assert venue.create_order(_buy("a")) == filled  # finished lately: still known
    assert venue.fetch_balance() == balance  # nothing bought twice
    assert venue.fetch_balance()["BTC"].free == Decimal("1")


def test_a_venue_keeps_its_resting_orders_however_many_finish(monkeypatch):
    monkeypatch.setattr(paper, "RECENT_FINISHED_ORDERS", WINDOW)
    venue = _venue()
    resting = venue.create_order(_buy("deep", "10"))
    for n in range(20):  # twenty orders placed and cancelled
        order = venue.create_order(_buy(f"c{n}"))
        venue.cancel_order(order.exchange_order_id, "BTC/USDT")
    assert venue.remembered() == 1 + WINDOW
    assert venue.fetch_open_orders() == [resting]
    assert venue.fetch_order_by_client_id("c19", "BTC/USDT").status is OrderStatus.CANCELLED
    assert venue.fetch_order_by_client_id("c0", "BTC/USDT") is None  # long forgotten
    with pytest.raises(DomainError, match="no order") as error:
        venue.fetch_order("paper-c0", "BTC/USDT")
    assert error.value.code == "ORDER_NOT_FOUND"
    venue.move_to(Decimal("10"))  # the one resting fills, as ever
    assert venue.fetch_order(resting.exchange_order_id, "BTC/USDT").status is OrderStatus.FILLED
