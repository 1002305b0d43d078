"""Chart data as a dashboard asks for it over GraphQL: the equity curve of the portfolio and
of one bot (from the ``equity`` projection), candles and prices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import projections.portfolio
from tests.api.conftest import T0
from tests.api.test_queries import traded

CURVE = """query($bot: ID, $from: DateTime!, $to: DateTime, $res: Resolution) {
  equityCurve(botId: $bot, from: $from, to: $to, resolution: $res) {
    time realizedPnl unrealizedPnl equity } }"""


def test_the_equity_curve_ends_at_the_portfolio_and_bot_figures(server):
    alice, bot_id = traded(server)
    span = {"from": (T0 - timedelta(minutes=2)).isoformat(),
            "to": (T0 + timedelta(hours=1)).isoformat(), "res": "MINUTE"}
    curve = server.gql(CURVE, span, alice.token)["equityCurve"]
    assert len(curve) == 62 + 1 and curve[0]["equity"] == "0"  # nothing before trading
    portfolio = server.gql("{ portfolio { realizedPnl unrealizedPnl } }",
                           token=alice.token)["portfolio"]
    last = curve[-1]
    assert Decimal(last["realizedPnl"]) == Decimal(portfolio["realizedPnl"]) != 0
    # open deals marked at the pair's last fill, as the pnl projection marks them (the
    # portfolio's own unrealizedPnl is at the market's last price)
    pnl = server.client.app.state.graphql_read_side.run(
        projections.portfolio.portfolio, alice.user_id)
    assert Decimal(last["unrealizedPnl"]) == pnl["unrealized_pnl"]
    assert Decimal(last["equity"]) == Decimal(last["realizedPnl"]) + Decimal(
        last["unrealizedPnl"])
    realized = [Decimal(p["realizedPnl"]) for p in curve]
    assert len(set(realized)) > 2  # it moved, step by step, over the minutes traded

    mine = server.gql(CURVE, {**span, "bot": bot_id}, alice.token)["equityCurve"]
    assert mine[-1] == last  # her only bot: the bot's curve is the portfolio's
    bob = server.user("bob")
    assert server.gql(CURVE, {**span, "bot": bot_id}, bob.token)["equityCurve"] is None
    assert {p["equity"] for p in server.gql(CURVE, span, bob.token)["equityCurve"]} == {"0"}


def test_an_equity_curve_of_too_many_points_or_backwards_is_refused(server):
    alice = server.user("alice")
    far = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat(),
           "res": "MINUTE"}
    body = server.post(CURVE, far, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_POINTS"
    back = {"from": T0.isoformat(), "to": (T0 - timedelta(hours=1)).isoformat()}
    body = server.post(CURVE, back, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_RANGE"


CANDLES = """query($pair: String!, $from: DateTime!, $to: DateTime, $tf: String, $file: String) {
  candles(pair: $pair, from: $from, to: $to, timeframe: $tf, file: $file) {
    time open high low close } }"""
SERIES = "binance_BTC_USDT-1m-2025-11.csv"


def test_candles_of_the_market_hold_every_fill_and_end_at_the_mark_price(server):
    alice, bot_id = traded(server)
    span = {"pair": "BTC/USDT", "from": (T0 - timedelta(hours=1)).isoformat(),
            "to": (T0 + timedelta(hours=1)).isoformat(), "tf": "10s"}
    candles = server.gql(CANDLES, span, alice.token)["candles"]
    assert len(candles) > 30  # the hour before the bot started is there too (history)
    for c in candles:
        assert Decimal(c["low"]) <= min(Decimal(c["open"]), Decimal(c["close"]))
        assert Decimal(c["high"]) >= max(Decimal(c["open"]), Decimal(c["close"]))
    query = """query($id: ID!) { markPrice(pair: "BTC/USDT")
      bot(id: $id) { openDeal { markPrice unrealizedPnl units fills { price } } } }"""
    found = server.gql(query, {"id": bot_id}, alice.token)
    assert found["markPrice"] == candles[-1]["close"]
    deal = found["bot"]["openDeal"]
    assert deal["markPrice"] == found["markPrice"]
    low = min(Decimal(c["low"]) for c in candles)
    high = max(Decimal(c["high"]) for c in candles)
    filled = [Decimal(f["price"]) for f in deal["fills"]]
    assert filled and all(low <= p <= high for p in filled)  # traded on this market
    minutes = server.gql(CANDLES, {**span, "tf": "1m"}, alice.token)["candles"]
    assert len(minutes) < len(candles) and minutes[-1]["close"] == candles[-1]["close"]


def test_candles_of_a_stored_series_are_merged_into_the_timeframe(server):
    alice = server.user("alice")
    hour = {"pair": "BTC/USDT", "from": "2025-11-01T00:00:00Z", "to": "2025-11-01T01:00:00Z",
            "tf": "15m", "file": SERIES}
    candles = server.gql(CANDLES, hour, alice.token)["candles"]
    assert [c["time"][11:16] for c in candles] == ["00:00", "00:15", "00:30", "00:45"]
    assert candles[0]["open"] == "109608.01"  # the file's first candle (2025-11-01 00:00)
    assert SERIES in server.gql("{ candleFiles }", token=alice.token)["candleFiles"]


def test_only_stored_series_by_name_may_be_read(server):
    alice = server.user("alice")
    base = {"pair": "BTC/USDT", "from": "2025-11-01T00:00:00Z", "to": "2025-11-01T01:00:00Z"}
    for name, code in [("../../../etc/passwd", "CANDLE_FILE_NOT_ALLOWED"),
                       ("/etc/hosts.csv", "CANDLE_FILE_NOT_ALLOWED"),
                       ("..%2Fsecret.csv", "CANDLE_FILE_NOT_ALLOWED"),
                       ("nothing-here.csv", "CANDLE_FILE_NOT_FOUND")]:
        body = server.post(CANDLES, {**base, "file": name}, alice.token)
        assert body["errors"][0]["extensions"]["code"] == code, name
    body = server.post(CANDLES, {**base, "file": SERIES, "tf": "7x"}, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_TIMEFRAME"


def test_prices_arrive_on_a_subscription_as_candles_close(server):
    alice = server.user("alice")
    server.step()
    query = 'subscription { prices(pairs: ["BTC/USDT"]) { pair price at } }'
    with server.client.websocket_connect("/graphql",
                                         subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init",
                      "payload": {"Authorization": f"Bearer {alice.token}"}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        first = ws.receive_json()["payload"]["data"]["prices"]
        server.step(5)
        second = ws.receive_json()["payload"]["data"]["prices"]
        ws.send_json({"id": "1", "type": "complete"})
    mark = server.gql('{ markPrice(pair: "BTC/USDT") }', token=alice.token)["markPrice"]
    assert first["pair"] == "BTC/USDT" and second["price"] == mark
    assert second["at"] > first["at"]
