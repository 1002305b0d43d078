"""The GraphQL answer cache: a repeated read-only query is answered without running a
resolver, yet never shows anything older than the log and the read models, never shows one
user another's answer, and never lets a refused token through."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from api.graphql.response_cache import _read_only
from application.server_settings import ServerSettings
from domain.errors import DomainError

BOTS = "{ bots(first: 10) { edges { node { id name status } } } }"
PORTFOLIO = "{ portfolio { realizedPnl dealsClosed dealsOpen } }"
RENAME = """mutation($id: ID!, $c: DcaConfigInput!) { editBot(id: $id, config: $c) {
  __typename } }"""


@contextmanager
def resolver_reads(server):
    """The statements the GraphQL read side runs meanwhile, except the read-version check."""
    statements: list[str] = []
    conn = server.client.app.state.graphql_read_side.store.conn
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)
    statements[:] = [s for s in statements if "projection_tracking" not in s]


def test_a_repeated_query_is_answered_without_running_its_resolvers(server):
    alice = server.user("alice")
    server.create_bot(alice, "first")
    first = server.gql(BOTS, token=alice.token)

    with resolver_reads(server) as reads:
        again = server.gql(BOTS, token=alice.token)

    assert again == first
    assert reads == []


def test_an_appended_event_is_seen_by_the_next_query(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice, "first")
    assert server.gql(BOTS, token=alice.token)["bots"]["edges"][0]["node"]["status"] == (
        "CREATED")

    server.start_bot(alice, bot_id)  # a new event; the projections follow it
    server.step()

    nodes = [e["node"] for e in server.gql(BOTS, token=alice.token)["bots"]["edges"]]
    assert nodes == [{"id": bot_id, "name": "first", "status": "RUNNING"}]


def test_the_portfolio_follows_deals_as_the_projections_apply_them(server):
    alice = server.user("alice")
    before = server.gql(PORTFOLIO, token=alice.token)["portfolio"]
    server.running_deal(alice)

    after = server.gql(PORTFOLIO, token=alice.token)["portfolio"]
    assert (before["dealsOpen"], after["dealsOpen"]) == (0, 1)


def test_two_users_asking_the_same_thing_each_get_their_own_answer(server):
    alice, bob = server.user("alice"), server.user("bob")
    server.create_bot(alice, "alice's")
    server.create_bot(bob, "bob's")

    for _ in range(2):
        names = {account.email: [e["node"]["name"] for e in
                                 server.gql(BOTS, token=account.token)["bots"]["edges"]]
                 for account in (alice, bob)}
        assert names == {alice.email: ["alice's"], bob.email: ["bob's"]}


def test_a_blocked_users_token_stops_working_though_its_answer_was_cached(server):
    alice = server.user("alice")
    server.gql(BOTS, token=alice.token)
    server.runtime.identity.block(UUID(alice.user_id))

    errors = server.post(BOTS, token=alice.token)["errors"]
    assert errors[0]["extensions"]["code"] == "ACCOUNT_BLOCKED"


def test_an_expired_token_stops_working_though_its_answer_was_cached(server):
    alice = server.user("alice")
    server.gql(BOTS, token=alice.token)
    server.clock.current += timedelta(days=2)

    errors = server.post(BOTS, token=alice.token)["errors"]
    assert errors[0]["extensions"]["code"] == "TOKEN_EXPIRED"


def test_a_forged_token_gets_no_cached_answer(server):
    alice = server.user("alice")
    server.gql(BOTS, token=alice.token)

    errors = server.post(BOTS, token=alice.token[:-2] + "xx")["errors"]
    assert errors[0]["extensions"]["code"] == "AUTHENTICATION_REQUIRED"


def test_mutations_and_uncached_fields_run_every_time(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice, "first")
    config = {"pair": "BTC/USDT", "baseOrderQuote": "100", "safetyOrderQuote": "50",
              "maxSafetyOrders": 2, "priceDeviationPct": "0.3", "safetyVolumeScale": "1.5",
              "safetyStepScale": "1.2", "takeProfitPct": "0.2"}
    answers = [server.gql(RENAME, {"id": bot_id, "c": {**config, "takeProfitPct": tp}},
                          alice.token)["editBot"] for tp in ("0.3", "0.4")]
    assert answers == [{"__typename": "Bot"}] * 2
    # each edit was decided and recorded: two more events on the bot
    assert server.runtime.trading.get_bot(UUID(bot_id)).version == 3  # created, 2 edits



@pytest.mark.parametrize(("document", "operation", "cached"), [
    (BOTS, None, True),
    (PORTFOLIO, None, True),
    ("query Page { bots { edges { node { id } } } portfolio { fees } }", "Page", True),
    ("{ me { email } }", None, False),
    ("{ bots { edges { node { id } } } systemStatus { tradingHalted } }", None, False),
    (RENAME, None, False),
    ("subscription { portfolioUpdates { fees } }", None, False),
    ("query A { bots { edges { node { id } } } } query B { me { email } }", "B", False),
    ("query A { bots { edges { node { id } } } } query B { me { email } }", None, False),
    ("{ ...Mine } fragment Mine on Query { bots { edges { node { id } } } }", None, False),
    ("{ bots(", None, False),
])
def test_only_read_only_queries_of_view_backed_fields_are_cached(document, operation, cached):
    assert _read_only(document, operation) is cached


def test_the_cache_can_be_turned_off_and_refuses_a_bad_setting():
    assert ServerSettings.from_environ({"TRADETAPE_GRAPHQL_CACHE": "off"}).graphql_cache is False
    assert ServerSettings.from_environ({}).graphql_cache is True
    with pytest.raises(DomainError) as refused:
        ServerSettings.from_environ({"TRADETAPE_GRAPHQL_CACHE": "maybe"})
    assert refused.value.code == "INVALID_SETTING"


def test_the_kept_answers_stay_within_their_count_and_byte_budget():
    from api.graphql.response_cache import _Lru

    kept = _Lru(3, max_weight=10, weigh=len)
    for key, value in (("a", "xxxx"), ("b", "xxxx"), ("a", "xx"), ("c", "xxxx"),
                       ("d", "x")):
        kept.put(key, value)
    assert list(kept) == ["a", "c", "d"] and kept.weight == 7
    kept.put("e", "xxxxxxxx")
    assert list(kept) == ["d", "e"] and kept.weight == 9  # the oldest went first


def test_when_the_read_version_cannot_be_read_queries_are_answered_as_without_cache(
        server, monkeypatch):
    alice = server.user("alice")
    server.create_bot(alice, "first")
    expected = server.gql(BOTS, token=alice.token)

    def broken():
        raise OSError("the log's head cannot be read")

    with monkeypatch.context() as patch:
        patch.setattr(server.runtime.trading.recorder, "max_notification_id", broken)
        assert server.gql(BOTS, token=alice.token) == expected


def test_other_users_events_leave_an_answer_cached_and_the_owners_own_do_not(server):
    alice, bob = server.user("alice"), server.user("bob")
    bot_id = server.create_bot(alice, "first")
    first = server.gql(BOTS, token=alice.token)

    server.create_bot(bob, "bob's")  # another user's events, applied by the projections
    with resolver_reads(server) as reads:
        again = server.gql(BOTS, token=alice.token)
    assert again == first and reads == []  # served from the cache

    server.start_bot(alice, bot_id)  # her own event: the next answer is made afresh
    with resolver_reads(server) as reads:
        nodes = server.gql(BOTS, token=alice.token)["bots"]["edges"]
    assert reads and nodes[0]["node"]["status"] == "RUNNING"


def _candle_at(server, close: str):
    from decimal import Decimal

    from application.market_tape import TapeCandle

    tape = server.runtime.loop.tape
    last = tape.last("BTC/USDT")
    price = Decimal(close)
    return TapeCandle(last.closed_at, last.closed_at + timedelta(seconds=1), price, price,
                      price, price)


def test_a_new_price_remarks_only_the_answers_that_marked_an_open_deal_at_it(server):
    alice, bob = server.user("alice"), server.user("bob")
    _, deal_id = server.running_deal(bob)  # bob's open deal is marked at the market's price
    alices, bobs = (server.gql(PORTFOLIO_MARKED, token=a.token)["portfolio"]
                    for a in (alice, bob))
    deal = server.gql(DEAL_FIGURES, {"id": deal_id}, bob.token)["deal"]
    tape = server.runtime.loop.tape
    price = tape.last("BTC/USDT").close * 2

    tape.record("BTC/USDT", _candle_at(server, str(price)))  # no event: a price only
    with resolver_reads(server) as reads:
        assert server.gql(PORTFOLIO_MARKED, token=alice.token)["portfolio"] == alices
        marked = server.gql(PORTFOLIO_MARKED, token=bob.token)["portfolio"]
    assert reads == []  # alice marks nothing; bob's answer is marked again, not made again
    assert Decimal(marked["unrealizedPnl"]) == _marked_at(deal, price)
    assert marked["unrealizedPnlDisplay"] == f"{_marked_at(deal, price):.2f}"
    assert {**marked, "unrealizedPnl": None, "unrealizedPnlDisplay": None} == {
        **bobs, "unrealizedPnl": None, "unrealizedPnlDisplay": None}


def _marked_at(deal: dict, price: Decimal) -> Decimal:
    """An open deal's unrealized P/L at ``price``: units × price − cost − fees paid."""
    return Decimal(deal["units"]) * price - Decimal(deal["cost"]) - Decimal(deal["fees"])


def test_each_bots_pnl_is_remarked_at_a_new_price_while_others_trade(server):
    alice, bob = server.user("alice"), server.user("bob")
    bot_id, deal_id = server.running_deal(bob)
    server.gql(BOTS_MARKED, token=bob.token)
    deal = server.gql(DEAL_FIGURES, {"id": deal_id}, bob.token)["deal"]
    server.create_bot(alice, "alice's")  # another user's events, applied by the views
    tape = server.runtime.loop.tape
    price = tape.last("BTC/USDT").close * 3

    tape.record("BTC/USDT", _candle_at(server, str(price)))
    with resolver_reads(server) as reads:
        nodes = server.gql(BOTS_MARKED, token=bob.token)["bots"]["edges"]
    assert reads == []
    assert [(n["node"]["id"], Decimal(n["node"]["pnl"]["unrealized"])) for n in nodes] == [
        (bot_id, _marked_at(deal, price))]

    server.create_bot(bob, "second")  # his own event: made afresh, with what it changed
    with resolver_reads(server) as reads:
        nodes = server.gql(BOTS_MARKED, token=bob.token)["bots"]["edges"]
    assert reads and [n["node"]["name"] for n in nodes] == ["scalper", "second"]
    assert Decimal(nodes[0]["node"]["pnl"]["unrealized"]) == _marked_at(deal, price)


@pytest.mark.parametrize("document", [
    "query($on: Boolean!) { bots { edges { node { openDeal { unrealizedPnl "
    "@include(if: $on) } } } } }",
    "{ portfolio { ... on Portfolio { unrealizedPnl } } }",
    "query($on: Boolean!) { portfolio { unrealizedPnl @include(if: $on) } }"])
def test_an_answer_that_cannot_be_remarked_is_made_again_at_a_new_price(server, document):
    bob = server.user("bob")
    server.running_deal(bob)
    first = server.gql(document, {"on": True} if "$on" in document else None, bob.token)
    tape = server.runtime.loop.tape
    tape.record("BTC/USDT", _candle_at(server, str(tape.last("BTC/USDT").close * 2)))

    with resolver_reads(server) as reads:
        again = server.gql(document, {"on": True} if "$on" in document else None, bob.token)
    assert reads and again != first  # a directive, a fragment, a directive


DEAL_FIGURES = "query($id: ID!) { deal(id: $id) { units cost fees } }"
BOTS_MARKED = ("{ bots { edges { node { id name pnl { dealsOpen unrealized: unrealizedPnl "
               "} } } } }")
PORTFOLIO_MARKED = "{ portfolio { dealsOpen unrealizedPnl unrealizedPnlDisplay realizedPnl } }"


def _head_read_beside_the_views(server, beside: bool) -> None:
    """The read version gives the log's head as the recorder says it, and the projections'
    positions as they are: in one statement where the views live beside the log
    (PostgreSQL), in two where they have a file of their own (SQLite's ``.views``)."""
    from api.graphql.owner_versions import OwnerVersions

    read = server.client.app.state.graphql_read_side
    versions = OwnerVersions(server.runtime.trading, read)
    alice = server.user("alice")
    server.create_bot(alice, "first")
    snapshot = versions.snapshot()
    assert bool(versions._head_sql) is beside
    assert snapshot.head == server.runtime.trading.recorder.max_notification_id() > 0
    assert snapshot.tracking == tuple(map(tuple, read.run(lambda store: store.query(
        f"SELECT name, position, generation FROM {store.q('projection_tracking')} "
        "ORDER BY name"))))
    assert len(snapshot.tracking) >= 5


def test_the_read_version_reads_the_logs_head_from_the_event_file(server):
    _head_read_beside_the_views(server, beside=False)


@pytest.mark.postgres
def test_the_read_version_reads_the_logs_head_beside_the_views_on_postgres(
        postgres_url, monkeypatch):
    from tests.api.conftest import served

    with served(postgres_url, monkeypatch) as server:
        _head_read_beside_the_views(server, beside=True)
