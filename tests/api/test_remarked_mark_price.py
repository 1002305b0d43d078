"""An open deal's ``markPrice`` in a cached answer: a new candle of its pair marks it again
at the new price without running the query again (the answer cache stays a hit), shown as
the query asked for it (alias, fragment); a closed deal's price and every other field stay
as they were."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.api.test_response_cache import resolver_reads

DEALS = """query($id: ID!) {
  deal(id: $id) { id status mark: markPrice units bot { name } }
  bots { edges { node { openDeal { ... on Deal { markPrice } } } } }
}"""
DIRECTED = """query($id: ID!, $on: Boolean!) {
  deal(id: $id) { markPrice @include(if: $on) units }
}"""


def new_price(server, factor: int) -> Decimal:
    """Records a candle of BTC/USDT at ``factor`` × the last close (no event: a price
    only); the new close."""
    from application.market_tape import TapeCandle

    tape = server.runtime.loop.tape
    last = tape.last("BTC/USDT")
    price = last.close * factor
    tape.record("BTC/USDT", TapeCandle(last.closed_at, last.closed_at + timedelta(seconds=1),
                                       price, price, price, price))
    return price


def test_an_open_deals_mark_price_is_remarked_at_a_new_price_not_made_again(server):
    bob = server.user("bob")
    _, deal_id = server.running_deal(bob)
    first = server.gql(DEALS, {"id": deal_id}, bob.token)
    price = new_price(server, 2)

    with resolver_reads(server) as reads:
        again = server.gql(DEALS, {"id": deal_id}, bob.token)
    assert reads == []  # served from the cache, marked at the new price
    assert Decimal(again["deal"]["mark"]) == price != Decimal(first["deal"]["mark"])
    [bot] = again["bots"]["edges"]
    assert Decimal(bot["node"]["openDeal"]["markPrice"]) == price
    assert {**again["deal"], "mark": None} == {**first["deal"], "mark": None}


def test_a_mark_price_shown_under_a_directive_is_made_again_at_a_new_price(server):
    bob = server.user("bob")
    _, deal_id = server.running_deal(bob)
    server.gql(DIRECTED, {"id": deal_id, "on": True}, bob.token)
    price = new_price(server, 3)

    with resolver_reads(server) as reads:
        again = server.gql(DIRECTED, {"id": deal_id, "on": True}, bob.token)
    assert reads  # made again
    assert Decimal(again["deal"]["markPrice"]) == price
