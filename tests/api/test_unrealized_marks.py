"""GraphQL's unrealized P/L of an open deal, its bot and its owner: at the market's price
when the server has one, else at the pair's last fill in the log (the read models' mark,
worked out when read: an api process without a feed)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from application.market_tape import MarketTape, TapeCandle

FIGURES = """query($id: ID!) {
  deal(id: $id) { units cost fees markPrice unrealizedPnl fills { price } }
  portfolio { unrealizedPnl dealsOpen }
  bots { edges { node { pnl { unrealizedPnl } } } } }"""


def _marked(answer: dict) -> tuple[Decimal, ...]:
    deal = answer["deal"]
    return (Decimal(deal["markPrice"]), Decimal(deal["unrealizedPnl"]),
            Decimal(answer["portfolio"]["unrealizedPnl"]),
            Decimal(answer["bots"]["edges"][0]["node"]["pnl"]["unrealizedPnl"]))


def _by_hand(deal: dict, price: Decimal) -> tuple[Decimal, ...]:
    """units × price − cost − buy fees (all its fees: nothing sold yet), for the deal, its
    bot and its owner (one bot, one open deal)."""
    value = Decimal(deal["units"]) * price - Decimal(deal["cost"]) - Decimal(deal["fees"])
    return price, value, value, value


def test_an_open_deal_is_marked_at_the_markets_price_then_at_its_pairs_last_fill(server):
    alice = server.user("alice")
    _, deal_id = server.running_deal(alice)
    tape = server.runtime.loop.tape
    last = tape.last("BTC/USDT")
    price = Decimal("12345.67")
    tape.record("BTC/USDT", TapeCandle(last.closed_at, last.closed_at + timedelta(seconds=1),
                                       price, price, price, price))
    answer = server.gql(FIGURES, {"id": deal_id}, alice.token)
    deal = answer["deal"]
    assert answer["portfolio"]["dealsOpen"] == 1 and len(deal["fills"]) == 1
    assert _marked(answer) == _by_hand(deal, price)

    server.runtime.loop.tape = MarketTape()  # no market price: the base order's fill
    answer = server.gql(FIGURES, {"id": deal_id}, alice.token)
    assert _marked(answer) == _by_hand(deal, Decimal(deal["fills"][0]["price"]))
