"""DataLoaders: a page of bots with their open deals, orders and P/L costs the same few
queries of the view store whether it holds 5 bots or 50."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.graphql import make_graphql_router
from domain.dca import DcaConfig

SMALL = {"pair": "BTC/USDT", "base_order_quote": "10", "safety_order_quote": "5",
         "max_safety_orders": 2, "price_deviation_pct": "0.5", "safety_volume_scale": "1.5",
         "safety_step_scale": "1", "take_profit_pct": "5"}
PAGE = """{ bots(first: 50) { edges { node { id name status
    openDeal { id units averageEntry fees unrealizedPnl orders { id side status price } }
    pnl { realizedPnl dealsOpen } } } pageInfo { hasNextPage } } }"""


def start_bots(server, account, count: int) -> None:
    trading, paper = server.runtime.trading, server.runtime.paper
    for n in range(count):
        bot_id = trading.create_bot(owner_id=account.user_id, name=f"bot {n}",
                                    config=DcaConfig.from_mapping(SMALL),
                                    exchange_account_id=account.paper_account_id)
        trading.start_bot(bot_id, actor=account.user_id)
        paper.follow(bot_id)
    server.step()


def statements_for(server, account, query: str) -> tuple[dict, list[str]]:
    app = FastAPI()
    router = make_graphql_router(server.runtime)
    app.include_router(router, prefix="/graphql")
    with TestClient(app) as client:
        statements: list[str] = []
        store = router.read_side.store
        store.conn.set_trace_callback(statements.append)
        response = client.post("/graphql", json={"query": query},
                               headers={"Authorization": f"Bearer {account.token}"})
        store.conn.set_trace_callback(None)
    body = response.json()
    assert "errors" not in body, body
    return body["data"], statements


def test_a_page_of_bots_with_open_deals_costs_a_constant_number_of_queries(server):
    few, many = server.user("few"), server.user("many")
    start_bots(server, few, 5)
    start_bots(server, many, 50)

    few_data, few_statements = statements_for(server, few, PAGE)
    many_data, many_statements = statements_for(server, many, PAGE)

    bots = many_data["bots"]["edges"]
    assert len(bots) == 50 and all(b["node"]["openDeal"]["orders"] for b in bots)
    assert len(few_data["bots"]["edges"]) == 5
    # bots, their open deals, the deals' P/L (with their pairs' marks), their orders, the
    # bots' P/L and their open deals' (marked when read)
    assert len(many_statements) == len(few_statements) == 6, many_statements


def test_fills_read_one_deal_history_each_and_configs_one_bot_each(server):
    account = server.user("alice")
    start_bots(server, account, 3)
    query = "{ bots { edges { node { config { pair } openDeal { fills { price } } } } } }"
    data, statements = statements_for(server, account, query)
    assert len(statements) == 2  # bots and open deals from the views; the rest from events
    for edge in data["bots"]["edges"]:
        assert edge["node"]["config"]["pair"] == "BTC/USDT"
        assert len(edge["node"]["openDeal"]["fills"]) == 1  # the base order


PNL = "pnl { realizedPnl unrealizedPnl fees dealsClosed dealsOpen winRate maxDrawdown }"


def test_a_page_of_bots_answers_each_pnl_as_one_bot_at_a_time_does(server):
    """The page reads every bot's P/L rows at once; ``bot(id)`` reads one bot's: the
    figures are the same, whichever way (and through whichever fragment) they were asked."""
    owner = server.user("owner")
    start_bots(server, owner, 3)
    server.create_bot(owner, "idle")  # no deal: its P/L without a mark
    page, _ = statements_for(server, owner, f"""{{ bots(first: 10) {{ edges {{
        node {{ id ... on Bot {{ {PNL} }} }} }} }} }}""")
    nodes = [edge["node"] for edge in page["bots"]["edges"]]
    assert len(nodes) == 4 and sum(n["pnl"]["dealsOpen"] for n in nodes) == 3
    assert all(n["pnl"]["unrealizedPnl"] for n in nodes)
    for node in nodes:
        one, _ = statements_for(server, owner, f'{{ bot(id: "{node["id"]}") {{ {PNL} }} }}')
        assert one["bot"]["pnl"] == node["pnl"]
