"""An open deal's ``markPrice`` in a cached answer: a new candle of its pair marks it again
at the new price without running the query again (the answer cache stays a hit), shown as
the query asked for it (alias, fragment); a closed deal's price and every other field stay
as they were."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.test_response_cache import resolver_reads

DEALS = """query($id: ID!) {
  deal(id: $id) { id status mark: markPrice units bot { name } }
  bots { edges { node { openDeal { ... on Deal { markPrice } } } } }
}"""
DIRECTED = """query($id: ID!, $on: Boolean!) {
  deal(id: $id) { markPrice @include(if: $on) units }
}"""


def new_price(server, factor: int) -> Decimal:
    """Records a candle of BTC/USDT at ``factor`` × the last close; the new close."""
    price = server.runtime.loop.tape.last("BTC/USDT").close * factor
    record(server, price)
    return price


def record(server, price: Decimal) -> None:
    """A candle of BTC/USDT closing at ``price`` (no event: a price only)."""
    from application.market_tape import TapeCandle

    tape = server.runtime.loop.tape
    last = tape.last("BTC/USDT")
    tape.record("BTC/USDT", TapeCandle(last.closed_at, last.closed_at + timedelta(seconds=1),
                                       price, price, price, price))


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


FIGURES = """query($id: ID!) {
  deal(id: $id) { id status markPrice unrealizedPnl units cost fees }
  portfolio { unrealizedPnl unrealizedPnlDisplay dealsOpen }
  bots { edges { node { pnl { unrealizedPnl } openDeal { markPrice pnl: unrealizedPnl } } } }
}"""


def _fresh(server, token: str, deal_id: str, n: int) -> dict:
    """FIGURES made afresh: a document not asked before (a comment apart) is a miss."""
    with resolver_reads(server) as reads:
        answer = server.gql(f"{FIGURES}\n# fresh {n}", {"id": deal_id}, token)
    assert reads  # resolvers ran
    return answer


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"),
                                   places=4), min_size=1, max_size=3))
def test_a_deal_answer_with_mark_price_and_unrealized_pnl_is_remarked_as_made_afresh(
        server, prices):
    """Both figures of one deal read its pair's mark: each is marked again (two reads of
    one pair, two figures), equal to the same query made at the new price."""
    owner = server.accounts.get("carol") or server.user("carol")
    deal_id = server.runtime.trading.get_bot(_only_bot(server, owner)).open_deal_id
    deal_id = str(deal_id)
    server.gql(FIGURES, {"id": deal_id}, owner.token)  # kept (or re-marked) at this price
    for price in prices:
        record(server, price)
        with resolver_reads(server) as reads:
            again = server.gql(FIGURES, {"id": deal_id}, owner.token)
        assert reads == []  # served from the cache, marked at the new price
        deal = again["deal"]
        assert Decimal(deal["markPrice"]) == price
        by_hand = Decimal(deal["units"]) * price - Decimal(deal["cost"]) - Decimal(deal["fees"])
        assert Decimal(deal["unrealizedPnl"]) == by_hand
        assert again == _fresh(server, owner.token, deal_id, next(COUNTER))


COUNTER = iter(range(1 << 30))


def _only_bot(server, owner):
    """carol's one bot, with an open deal (made at the first example)."""
    from uuid import UUID

    bots = server.gql("{ bots { edges { node { id } } } }", token=owner.token)["bots"]["edges"]
    if not bots:
        bot_id, _ = server.running_deal(owner)
        return UUID(bot_id)
    return UUID(bots[0]["node"]["id"])

