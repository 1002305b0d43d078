"""Queries over the read models, as a client sees them: pages and cursors, a bot with its
open deal, deals with orders and fills, the portfolio now and in the past, the daily P/L
series, the leaderboard, the audit log, time travel, the DCA plan and the system status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.api.conftest import CONFIG, T0
from tests.projection_stubs import recorded_now

BOT = """query($id: ID!) { bot(id: $id) { id name status mode pair configVersion
  dealsOpened dealsClosed dealsCancelled openDealId
  config { takeProfitPct maxSafetyOrders stopLossPct }
  openDeal { id status units entryPrice averageEntry takeProfitPrice safetyOrdersUsed
  orders { purpose side type status price amount } fills { price safetyOrder } }
  pnl { realizedPnl dealsClosed winRate } } }"""
DEALS = """query($bot: ID, $status: DealStatus, $first: Int, $after: String) {
  deals(botId: $bot, status: $status, first: $first, after: $after) {
    edges { cursor node { id status closeReason realizedPnl fees } }
    pageInfo { hasNextPage endCursor } } }"""


def traded(server, minutes: int = 240):
    """Alice's bot after ``minutes`` of market: several deals opened and closed."""
    alice = server.user("alice")
    bot_id, _ = server.running_deal(alice)
    for _ in range(minutes // 30):
        server.step(30)
    return alice, bot_id


def test_bots_are_paged_with_cursors_oldest_first(server):
    alice = server.user("alice")
    made = []
    for n in range(5):
        server.clock.current += timedelta(seconds=1)  # oldest first: by creation time
        made.append(server.create_bot(alice, f"bot {n}"))
    query = ("query($after: String) { bots(first: 2, after: $after) { edges { cursor node { "
             "id name } } pageInfo { hasNextPage endCursor } } }")
    seen, after, pages = [], None, 0
    while True:
        page = server.gql(query, {"after": after}, alice.token)["bots"]
        seen += [e["node"]["id"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert seen == made and pages == 3
    body = server.post(query, {"after": "garbage"}, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


def test_a_bot_shows_its_open_deal_configuration_and_pnl(server):
    alice, bot_id = traded(server)
    bot = server.gql(BOT, {"id": bot_id}, alice.token)["bot"]
    assert bot["status"] == "RUNNING" and bot["mode"] == "PAPER" and bot["pair"] == "BTC/USDT"
    assert bot["config"] == {"takeProfitPct": "0.15", "maxSafetyOrders": 2,
                             "stopLossPct": None}
    assert bot["dealsOpened"] == bot["dealsClosed"] + 1 and bot["dealsClosed"] >= 2
    assert bot["dealsCancelled"] == 0
    deal = bot["openDeal"]
    assert deal["id"] == bot["openDealId"] and deal["status"] == "OPEN"
    assert deal["orders"][0]["purpose"] == "base" and deal["orders"][0]["type"] == "market"
    assert Decimal(deal["units"]) > 0 and Decimal(deal["takeProfitPrice"]) > Decimal(
        deal["averageEntry"])
    # entered at the base order's fill; safety orders only move the average down from there
    base_fill = next(f for f in deal["fills"] if f["safetyOrder"] == 0)
    assert abs(Decimal(deal["entryPrice"]) - Decimal(base_fill["price"])) < Decimal("1e-20")
    if deal["safetyOrdersUsed"]:
        assert Decimal(deal["entryPrice"]) > Decimal(deal["averageEntry"])
    else:
        assert abs(Decimal(deal["entryPrice"]) - Decimal(deal["averageEntry"])) < Decimal(
            "1e-20")
    assert bot["pnl"]["dealsClosed"] == bot["dealsClosed"]


def test_deals_are_filtered_by_bot_and_status_and_paged(server):
    alice, bot_id = traded(server)
    closed = server.gql(DEALS, {"bot": bot_id, "status": "CLOSED"}, alice.token)["deals"]
    assert closed["edges"] and all(e["node"]["status"] == "CLOSED" for e in closed["edges"])
    assert all(e["node"]["closeReason"] == "take_profit" for e in closed["edges"])
    first = server.gql(DEALS, {"first": 1}, alice.token)["deals"]
    assert first["edges"][0]["node"]["status"] == "OPEN"  # newest first
    assert first["pageInfo"]["hasNextPage"]
    rest = server.gql(DEALS, {"first": 100, "after": first["pageInfo"]["endCursor"]},
                      alice.token)["deals"]
    assert len(rest["edges"]) == len(closed["edges"])


def test_a_deal_has_its_orders_and_fills_with_decimals_as_strings(server):
    alice, bot_id = traded(server)
    closed = server.gql(DEALS, {"bot": bot_id, "status": "CLOSED"}, alice.token)["deals"]
    deal_id = closed["edges"][-1]["node"]["id"]
    deal = server.gql("""query($id: ID!) { deal(id: $id) { status realizedPnl fees
        bot { id } orders { purpose status filled averagePrice fees }
        fills { orderId side price amount fee at } } }""", {"id": deal_id},
                      alice.token)["deal"]
    assert deal["bot"]["id"] == bot_id
    buys = [f for f in deal["fills"] if f["side"] == "buy"]
    sells = [f for f in deal["fills"] if f["side"] == "sell"]
    assert buys and len(sells) == 1 and deal["fills"][-1] is sells[0]
    fees = sum(Decimal(f["fee"]) for f in deal["fills"])
    assert fees == Decimal(deal["fees"])
    proceeds = Decimal(sells[0]["price"]) * Decimal(sells[0]["amount"])
    cost = sum(Decimal(f["price"]) * Decimal(f["amount"]) for f in buys)
    assert proceeds - cost - fees == Decimal(deal["realizedPnl"])
    filled = {o["purpose"] for o in deal["orders"] if o["status"] == "filled"}
    assert {"base", "take_profit"} <= filled
    assert all(isinstance(f["price"], str) and "E" not in f["price"] for f in deal["fills"])


def test_the_portfolio_now_and_as_of_an_earlier_moment(server):
    """asOf is recorded time: the wall-clock moment the store had recorded what it shows
    (the server's clock here is a test's, the database's is not)."""
    alice = server.user("alice")
    start = recorded_now()  # alice registered, with her 10,000 USDT, nothing traded yet
    server.running_deal(alice)
    for _ in range(240 // 30):
        server.step(30)
    query = """query($at: DateTime) { portfolio(asOf: $at) { asOf realizedPnl unrealizedPnl
        fees dealsClosed dealsOpen winRate position balances { asset free locked total } } }"""
    now = server.gql(query, {}, alice.token)["portfolio"]
    assert now["asOf"] is None and now["dealsClosed"] >= 2 and now["dealsOpen"] == 1
    assert Decimal(now["fees"]) > 0 and now["winRate"] is not None
    usdt = next(b for b in now["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["total"]) == Decimal(usdt["free"]) + Decimal(usdt["locked"])
    before = server.gql(query, {"at": start}, alice.token)["portfolio"]
    assert before["asOf"].startswith(start[:19])
    assert before["dealsClosed"] == 0 and before["dealsOpen"] == 0
    assert [(b["asset"], Decimal(b["total"])) for b in before["balances"]] == [
        ("USDT", Decimal(10000))]
    assert before["position"] > 0 and now["position"] is None  # the log as it stood then
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    body = server.post(query, {"at": later}, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "AS_OF_IN_FUTURE"


def test_a_deal_whose_base_order_was_refused_is_cancelled_not_closed(server):
    alice, trader = traded(server)
    poor = server.create_bot(alice, "poor", baseOrderQuote="20000")  # the account has 10,000
    # Funded when it starts (else it would not: a funding plan), short when its deal opens.
    move = ('mutation($a: ID!, $n: String!) {{ {}(accountId: $a, asset: "USDT", amount: $n) '
            '{{ __typename }} }}')
    server.gql(move.format("depositToPaperAccount"), {"a": alice.paper_account_id,
                                                      "n": "20000"}, alice.token)
    server.start_bot(alice, poor)
    server.gql(move.format("withdrawFromPaperAccount"), {"a": alice.paper_account_id,
                                                         "n": "15000"}, alice.token)
    server.step()
    server.gql("mutation($id: ID!) { setLeaderboardListing(id: $id, listed: true) { "
               "__typename } }", {"id": poor}, alice.token)

    refused = server.gql(BOT, {"id": poor}, alice.token)["bot"]
    assert refused["status"] == "ERROR" and refused["openDealId"] is None
    assert (refused["dealsOpened"], refused["dealsClosed"], refused["dealsCancelled"]) == (
        1, 0, 1)
    assert refused["pnl"]["dealsClosed"] == 0 and refused["pnl"]["winRate"] is None
    [deal] = server.gql(DEALS, {"bot": poor}, alice.token)["deals"]["edges"]
    assert deal["node"]["status"] == "CANCELLED" and deal["node"]["realizedPnl"] is None
    traded_bot = server.gql(BOT, {"id": trader}, alice.token)["bot"]
    assert traded_bot["dealsClosed"] >= 2 and traded_bot["dealsCancelled"] == 0
    portfolio = server.gql("{ portfolio { dealsClosed dealsOpen winRate } }",
                           token=alice.token)["portfolio"]
    assert portfolio["dealsClosed"] == traded_bot["dealsClosed"]  # the refused one not in it
    assert portfolio["dealsOpen"] == 1  # the trader's
    assert poor not in {r["botId"] for r in server.gql("{ leaderboard { botId } }")[
        "leaderboard"]}


def test_pnl_series_has_a_point_per_day_with_activity(server):
    alice, bot_id = traded(server)
    series = server.gql("query($id: ID!) { pnlSeries(botId: $id) { day realizedPnl "
                        "dealsClosed cumulativeRealized } }", {"id": bot_id},
                        alice.token)["pnlSeries"]
    assert [p["day"] for p in series] == ["2026-03-01"]
    bot = server.gql(BOT, {"id": bot_id}, alice.token)["bot"]
    assert series[0]["cumulativeRealized"] == bot["pnl"]["realizedPnl"]


def test_the_leaderboard_lists_only_bots_whose_owners_opted_in(server):
    alice, bot_id = traded(server)
    query = "{ leaderboard { rank botId name dealsClosed roi winRate } }"
    assert server.gql(query)["leaderboard"] == []
    listed = server.gql("mutation($id: ID!) { setLeaderboardListing(id: $id, listed: true) { "
                        "... on Bot { leaderboardOptIn } } }", {"id": bot_id}, alice.token)
    assert listed["setLeaderboardListing"]["leaderboardOptIn"] is True
    board = server.gql(query)["leaderboard"]  # public: no token needed
    assert [(e["rank"], e["botId"], e["name"]) for e in board] == [(1, bot_id, "scalper")]


def test_the_audit_log_is_filtered_by_aggregate_and_actor_newest_first(server):
    alice, bot_id = traded(server, minutes=30)
    query = """query($f: AuditLogFilter, $after: String) { auditLog(filter: $f, first: 2,
        after: $after) { edges { node { position aggregateId eventType actor summary hash } }
        pageInfo { hasNextPage endCursor } } }"""
    page = server.gql(query, {"f": {"aggregateId": bot_id}}, alice.token)["auditLog"]
    positions = [e["node"]["position"] for e in page["edges"]]
    assert positions == sorted(positions, reverse=True)
    assert {e["node"]["aggregateId"] for e in page["edges"]} == {bot_id}
    assert page["pageInfo"]["hasNextPage"]
    older = server.gql(query, {"f": {"aggregateId": bot_id},
                               "after": page["pageInfo"]["endCursor"]}, alice.token)
    assert older["auditLog"]["edges"][0]["node"]["position"] < positions[-1]
    mine = server.gql(query, {"f": {"actor": alice.user_id}}, alice.token)["auditLog"]
    assert mine["edges"] and all(e["node"]["actor"] == alice.user_id for e in mine["edges"])


def test_history_shows_an_aggregate_as_it_was(server):
    alice, bot_id = traded(server, minutes=30)
    query = """query($id: ID!, $at: DateTime) { history(aggregateId: $id, asOf: $at) {
        aggregateType version asOf events { version type actor data } state } }"""
    now = server.gql(query, {"id": bot_id}, alice.token)["history"]
    assert now["aggregateType"] == "Bot" and now["version"] == len(now["events"]) > 2
    assert now["state"]["deals_opened"] >= 1
    created = server.gql(query, {"id": bot_id, "at": T0.isoformat()}, alice.token)["history"]
    assert [e["type"] for e in created["events"]] == ["Bot.Created", "Bot.Started"]
    assert created["state"]["deals_opened"] == 0 and created["state"]["status"] == "running"
    too_early = (T0 - timedelta(days=1)).isoformat()
    assert server.gql(query, {"id": bot_id, "at": too_early}, alice.token)["history"] is None
    me = server.gql(query, {"id": alice.user_id}, alice.token)["history"]
    assert me["aggregateType"] == "User"
    text = str(me)
    assert "alice@example.com" not in text and "[redacted]" in text


def test_dca_plan_is_the_ladder_or_every_broken_rule(server):
    query = """query($c: DcaConfigInput!, $p: String!) { dcaPlan(config: $c, price: $p) {
        __typename ... on DcaPlan { pair levels { n price quote averagePrice } }
        ... on InputErrors { code errors { code field rule } } } }"""
    plan = server.gql(query, {"c": CONFIG, "p": "100"})["dcaPlan"]
    assert plan["pair"] == "BTC/USDT"
    assert [(lv["n"], lv["price"], lv["quote"]) for lv in plan["levels"]] == [
        (0, "100", "100"), (1, "99.800", "50"), (2, "99.5600", "75.0")]
    bad = server.gql(query, {"c": {**CONFIG, "takeProfitPct": "0", "stopLossPct": "100"},
                             "p": "100"})["dcaPlan"]
    assert bad["code"] == "INVALID_CONFIG"
    assert {(e["code"], e["field"], e["rule"]) for e in bad["errors"]} == {
        ("INVALID_CONFIG", "takeProfitPct", "NOT_POSITIVE"),
        ("INVALID_CONFIG", "stopLossPct", "OUT_OF_RANGE")}
    unparsable = server.gql(query, {"c": {**CONFIG, "baseOrderQuote": "1.5e"}, "p": "100"})
    assert unparsable["dcaPlan"]["errors"][0]["field"] == "baseOrderQuote"
    price = server.gql(query, {"c": CONFIG, "p": "-1"})["dcaPlan"]
    assert (price["code"], price["errors"][0]["field"]) == ("NOT_POSITIVE", "price")


def test_system_status_shows_the_trading_switch_and_health(server):
    status = server.gql("{ systemStatus { halted reason acceptingCommands health parts } }")
    status = status["systemStatus"]
    assert status["halted"] is False and status["reason"] is None
    assert status["acceptingCommands"] is True
    assert set(status["parts"]) == {"event_store", "projections", "engine_loop", "wallet",
                                    "background", "process"}
    assert set(status["parts"]["background"]["tasks"]) == {
        "wallet-monitor", "reconciliation", "billing-sweep"}
    assert status["health"] == "red"  # the test drives the loop: no loop thread runs


def test_me_is_the_caller(server):
    alice = server.user("alice")
    me = server.gql("{ me { id email displayName role emailVerified paperAccountId } }",
                    token=alice.token)["me"]
    assert me == {"id": alice.user_id, "email": "alice@example.com", "displayName": "alice",
                  "role": "USER", "emailVerified": True,
                  "paperAccountId": alice.paper_account_id}
