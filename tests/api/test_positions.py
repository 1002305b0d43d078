"""Positions over GraphQL on the real runtime (a replayed market stepped by the test): a
market buy, an OCO whose take profit fills and cancels its stop, a trailing stop that rises
with the market and sells on the turn, cancelExit, closePosition, ownership and risk."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import DomainError
from domain.recording import Cause
from tests.positions_gql import (
    ADOPT_POSITION,
    CANCEL_EXIT,
    CLOSE_POSITION,
    OPEN_POSITION,
    PLACE_OCO,
    PLACE_TRAILING_STOP,
    POSITION,
    POSITIONS,
)

pytestmark = pytest.mark.timeout(120)
D = Decimal


def open_position(server, account, **fields):
    server.step(1)  # a candle has closed: the market has a price
    data = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", **fields}},
                      account.token)["openPosition"]
    assert data["__typename"] == "Position", data
    return data


def exit_of(server, account, position_id):
    [group] = server.gql(POSITION, {"id": position_id}, account.token)["position"]["exits"]
    return group


def orders_of(server, position_id):
    from domain.orders import Order
    from domain.positions import Position

    trading = server.runtime.trading
    position = trading.load(UUID(position_id), Position)
    return [(leg, trading.load(order_id, Order)) for order_id, _, leg in position.orders]


def test_a_market_buy_opens_a_position_at_the_current_price(server):
    alice = server.user("alice")
    position = open_position(server, alice, quoteAmount="100")
    assert position["status"] == "OPEN" and position["entry"] == "market"
    price = D(position["entryPrice"])
    assert D(position["units"]) * price == D("100")
    assert D(position["fees"]) == D("0.1")  # the paper venue's 0.1 %
    [(leg, order)] = orders_of(server, position["id"])
    assert leg == "entry" and str(order.status) == "filled" and order.price is None


def test_oco_prices_on_the_wrong_side_are_refused_and_nothing_is_attached(server):
    alice = server.user("alice")
    position = open_position(server, alice, quoteAmount="100")
    price = D(position["entryPrice"])
    for take_profit, stop in ((price - 1, price - 100), (price + 100, price + 1)):
        data = server.gql(PLACE_OCO, {"input": {
            "positionId": position["id"], "takeProfitPrice": str(take_profit),
            "stopPrice": str(stop)}}, alice.token)["placeOco"]
        assert data["code"] == "OCO_PRICES_ILLOGICAL", data
    assert server.gql(POSITION, {"id": position["id"]}, alice.token)["position"][
        "exits"] == []
    assert len(orders_of(server, position["id"])) == 1  # the entry only


def test_an_oco_whose_take_profit_fills_cancels_its_stop_in_the_same_step(server):
    alice = server.user("alice")
    position = open_position(server, alice, quoteAmount="100")
    price = D(position["entryPrice"])
    take_profit, stop = price * D("1.0005"), price * D("0.95")
    group = server.gql(PLACE_OCO, {"input": {
        "positionId": position["id"], "takeProfitPrice": str(take_profit),
        "stopPrice": str(stop)}}, alice.token)["placeOco"]
    assert group["status"] == "ACTIVE" and D(group["level"]) == stop
    for _ in range(120):
        server.step(1)
        if exit_of(server, alice, position["id"])["status"] != "ACTIVE":
            break
    group = exit_of(server, alice, position["id"])
    assert (group["status"], group["leg"]) == ("FILLED", "take_profit")
    assert D(group["fillPrice"]) == take_profit  # a limit fills at its own price
    events = [type(e).__name__ for e in server.runtime.trading.events.get(UUID(group["id"]))]
    assert events == ["Attached", "LegFilled", "LegCancelled"]
    closed = server.gql(POSITION, {"id": position["id"]}, alice.token)["position"]
    assert closed["status"] == "CLOSED" and D(closed["units"]) == 0
    legs = [(o["leg"], o["type"], o["status"]) for o in closed["orders"]]
    assert legs == [("entry", "market", "filled"),
                    ("take_profit", "limit", "filled")]  # no stop ever sent
    assert D(closed["orders"][1]["price"]) == take_profit


def test_a_trailing_stop_rises_with_the_market_and_sells_on_the_turn(server):
    alice = server.user("alice")
    position = open_position(server, alice, amount="0.001")
    group = server.gql(PLACE_TRAILING_STOP, {"input": {
        "positionId": position["id"], "trailPercent": "0.05"}}, alice.token)[
        "placeTrailingStop"]
    levels = [D(group["level"])]
    for _ in range(240):
        server.step(1)
        group = exit_of(server, alice, position["id"])
        if group["level"] is not None:
            levels.append(D(group["level"]))
        if group["status"] != "ACTIVE":
            break
    assert group["status"] == "FILLED" and group["leg"] == "trailing"
    assert levels == sorted(levels)  # it never moved down
    moves = [e for e in list(server.runtime.trading.events.get(UUID(group["id"])))
             if type(e).__name__ == "LevelMoved"]
    for move in moves:  # each level is 0.05 % under the highest it followed
        assert move.level == move.extreme * (1 - D("0.05") / 100)
    assert D(group["fillPrice"]) <= moves[-1].level  # sold at the level, or a gap below
    assert server.gql(POSITION, {"id": position["id"]}, alice.token)["position"][
        "status"] == "CLOSED"


def test_cancel_exit_cancels_the_resting_take_profit_and_close_sells_at_market(server):
    alice = server.user("alice")
    position = open_position(server, alice, quoteAmount="100")
    price = D(position["entryPrice"])
    group = server.gql(PLACE_OCO, {"input": {
        "positionId": position["id"], "takeProfitPrice": str(price * 2),
        "stopPrice": str(price / 2)}}, alice.token)["placeOco"]
    cancelled = server.gql(CANCEL_EXIT, {"id": group["id"]}, alice.token)["cancelExit"]
    assert cancelled["status"] == "CANCELLED"
    again = server.gql(CANCEL_EXIT, {"id": group["id"]}, alice.token)["cancelExit"]
    assert again["code"] == "EXIT_NOT_ACTIVE"
    server.gql(PLACE_TRAILING_STOP, {"input": {"positionId": position["id"],
                                               "trailAmount": "50"}}, alice.token)
    closed = server.gql(CLOSE_POSITION, {"id": position["id"]}, alice.token)["closePosition"]
    assert closed["status"] == "CLOSED" and closed["closeReason"] == "close"
    assert [e["status"] for e in closed["exits"]] == ["CANCELLED", "CANCELLED"]
    legs = [(leg, str(order.status)) for leg, order in orders_of(server, position["id"])]
    assert legs == [("entry", "filled"), ("take_profit", "cancelled"), ("close", "filled")]
    listed = server.gql(POSITIONS, {"status": "CLOSED"}, alice.token)["positions"]
    assert [e["node"]["id"] for e in listed["edges"]] == [position["id"]]


def test_another_users_position_and_exits_are_not_found(server):
    alice, bob = server.user("alice"), server.user("bob")
    position = open_position(server, alice, quoteAmount="100")
    assert server.gql(POSITION, {"id": position["id"]}, bob.token)["position"] is None
    assert server.gql(POSITIONS, {}, bob.token)["positions"]["edges"] == []
    closed = server.gql(CLOSE_POSITION, {"id": position["id"]}, bob.token)["closePosition"]
    assert closed["code"] == "NOT_FOUND"
    data = server.gql(OPEN_POSITION, {"input": {
        "pair": "BTC/USDT", "quoteAmount": "10",
        "exchangeAccountId": alice.paper_account_id}}, bob.token)["openPosition"]
    assert data["code"] == "NOT_FOUND"


@pytest.mark.parametrize(("fields", "code"), [
    ({"quoteAmount": "0"}, "NOT_POSITIVE"),
    ({"quoteAmount": "1e13"}, "OUT_OF_RANGE"),
    ({}, "AMOUNT_REQUIRED"),
    ({"quoteAmount": "10", "amount": "1"}, "AMOUNT_REQUIRED"),
    ({"quoteAmount": "10", "pair": "ETH/USDT"}, "PAIR_NOT_TRADED"),
    ({"quoteAmount": "10", "pair": "BTCUSDT"}, "INVALID_PAIR"),
    ({"quoteAmount": "10", "pair": "btc/usdt"}, "INVALID_PAIR"),
    ({"quoteAmount": "10", "pair": "B" * 40 + "/USDT"}, "TEXT_TOO_LONG"),
    ({"quoteAmount": "100000000"}, "ORDER_REJECTED"),  # more than the paper account has
])
def test_bad_position_inputs_are_refused_by_name(server, fields, code):
    alice = server.user("alice")
    server.step(1)
    data = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", **fields}},
                      alice.token)["openPosition"]
    assert data["code"] == code, data
    open_ones = server.gql(POSITIONS, {"status": "OPEN"}, alice.token)["positions"]
    assert open_ones["edges"] == []


def test_the_injected_risk_check_sees_the_quote_and_its_refusal_sends_no_order(server):
    alice = server.user("alice")
    asked = []

    def risk_check(owner_id, quote):
        asked.append((owner_id, quote))
        if quote > 50:
            raise DomainError("maxPositionQuote 50 USDT: this position adds "
                              f"{quote}", code="RISK_LIMIT_REACHED")

    server.runtime.positions.risk_check = risk_check
    server.step(1)
    refused = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", "quoteAmount": "60"}},
                         alice.token)["openPosition"]
    assert refused["code"] == "RISK_LIMIT_REACHED"
    assert server.gql(POSITIONS, {}, alice.token)["positions"]["edges"] == []
    position = open_position(server, alice, quoteAmount="40")
    assert asked == [(UUID(alice.user_id), D(60)), (UUID(alice.user_id), D(40))]
    assert position["status"] == "OPEN"


def test_exit_all_closes_every_position_of_one_owner_only(server):
    alice, bob = server.user("alice"), server.user("bob")
    mine = [open_position(server, alice, quoteAmount="100") for _ in range(2)]
    theirs = open_position(server, bob, quoteAmount="100")
    price = D(mine[0]["entryPrice"])
    server.gql(PLACE_OCO, {"input": {"positionId": mine[0]["id"],
                                     "takeProfitPrice": str(price * 2),
                                     "stopPrice": str(price / 2)}}, alice.token)
    cause = Cause(server.clock.now(), "operator:ana", "emergency-1")
    server.runtime.positions.exit_all(UUID(alice.user_id), cause)
    server.runtime.refresh()
    for position in mine:
        found = server.gql(POSITION, {"id": position["id"]}, alice.token)["position"]
        assert found["status"] == "CLOSED" and found["closeReason"] == "emergency_exit"
        events = list(server.runtime.trading.events.get(UUID(position["id"])))
        assert {e.correlation_id for e in events[-3:]} == {"emergency-1"}
    assert server.gql(POSITION, {"id": theirs["id"]}, bob.token)["position"][
        "status"] == "OPEN"


def test_an_adopted_holding_is_a_position_without_an_order(server):
    alice = server.user("alice")
    server.runtime.trading.deposit(UUID(alice.paper_account_id), "BTC", D("0.5"))
    bought = open_position(server, alice, amount="0.03")  # its own units, apart
    too_much = server.gql(ADOPT_POSITION, {"input": {"pair": "BTC/USDT", "amount": "1"}},
                          alice.token)["adoptPosition"]
    assert too_much["code"] == "INSUFFICIENT_HOLDING"
    assert too_much["message"] == "the account holds 0.53 free, 0.03 of it in other positions"
    adopted = server.gql(ADOPT_POSITION, {"input": {
        "pair": "BTC/USDT", "amount": "0.5", "entryPrice": "90000"}}, alice.token)[
        "adoptPosition"]
    assert adopted["__typename"] == "Position", adopted
    assert (adopted["status"], adopted["entry"], adopted["units"]) == (
        "OPEN", "adopted", "0.5")
    assert D(adopted["entryPrice"]) == 90000
    assert orders_of(server, adopted["id"]) == []
    assert bought["status"] == "OPEN"


def test_a_restarted_server_carries_on_with_every_exit_from_the_events(tmp_path,
                                                                        monkeypatch):
    """State in events only: after a restart the take profit still rests on the paper
    venue (its units locked, not placed again), the trailing stop follows from the level
    it recorded, and the next candles fill them as if nothing had happened."""
    from fastapi.testclient import TestClient

    from api.server import create_app
    from tests.api.conftest import Server, open_server

    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    runtime, clock = open_server(url, monkeypatch)
    with TestClient(create_app(runtime, manage_runtime=False)) as client:
        first = Server(runtime, client, clock)
        alice = first.user("alice")
        position = open_position(first, alice, amount="0.002")
        price = D(position["entryPrice"])
        oco = first.gql(PLACE_OCO, {"input": {
            "positionId": position["id"], "takeProfitPrice": str(price * D("1.0005")),
            "stopPrice": str(price / 2), "amount": "0.001"}}, alice.token)["placeOco"]
        trailing = first.gql(PLACE_TRAILING_STOP, {"input": {
            "positionId": position["id"], "trailPercent": "50"}}, alice.token)[
            "placeTrailingStop"]
        stopped_at = clock.current
    runtime.stop()

    runtime, clock = open_server(url, monkeypatch)
    clock.current = stopped_at
    runtime.start()
    runtime.loop.stop()  # the test steps the market itself
    try:
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            again = Server(runtime, client, clock)
            desk = runtime.paper.desk(alice.paper_account_id, "BTC/USDT")
            assert {str(g) for g in desk.exits} == {oco["id"], trailing["id"]}
            [(_, take_profit)] = [o for o in orders_of(again, position["id"])
                                  if o[0] == "take_profit"]
            assert [o.client_order_id for o in desk.venue.fetch_open_orders()] == [
                take_profit.client_order_id]
            for _ in range(120):
                again.step(1)
                if exit_of_id(again, alice, position["id"], oco["id"])["status"] != "ACTIVE":
                    break
            assert exit_of_id(again, alice, position["id"], oco["id"])["leg"] == "take_profit"
            legs = [leg for leg, _ in orders_of(again, position["id"])]
            assert legs == ["entry", "take_profit"]  # nothing placed twice
            found = again.gql(POSITION, {"id": position["id"]}, alice.token)["position"]
            assert D(found["units"]) == D("0.001") and found["status"] == "OPEN"
    finally:
        runtime.stop()


def exit_of_id(server, account, position_id, exit_id):
    exits = server.gql(POSITION, {"id": position_id}, account.token)["position"]["exits"]
    return next(e for e in exits if e["id"] == exit_id)


def test_a_trailing_entry_follows_the_lows_and_buys_on_the_rise(server):
    alice = server.user("alice")
    pending = open_position(server, alice, amount="0.001", trailPercent="0.05")
    assert (pending["status"], pending["entry"], pending["units"]) == ("PENDING", "trailing",
                                                                       "0")
    [group] = pending["exits"]
    assert (group["side"], group["kind"]) == ("buy", "TRAILING_STOP")
    levels = [D(group["level"])]
    for _ in range(240):
        server.step(1)
        group = exit_of(server, alice, pending["id"])
        levels.append(D(group["level"]))
        if group["status"] != "ACTIVE":
            break
    assert levels == sorted(levels, reverse=True)  # a buy stop's level only comes down
    assert (group["status"], group["leg"]) == ("FILLED", "trailing")
    bought = server.gql(POSITION, {"id": pending["id"]}, alice.token)["position"]
    assert bought["status"] == "OPEN" and D(bought["units"]) == D("0.001")
    assert D(bought["entryPrice"]) == D(group["fillPrice"])


def test_a_limit_entry_rests_until_filled_and_closing_it_cancels_the_position(server):
    alice = server.user("alice")
    server.step(1)
    price = server.runtime.paper.desk(alice.paper_account_id, "BTC/USDT").venue.price
    pending = server.gql(OPEN_POSITION, {"input": {
        "pair": "BTC/USDT", "quoteAmount": "100", "limitPrice": str(price / 2)}},
        alice.token)["openPosition"]
    assert (pending["status"], pending["entry"]) == ("PENDING", "limit")
    server.step(5)
    no_exit = server.gql(PLACE_OCO, {"input": {
        "positionId": pending["id"], "takeProfitPrice": str(price * 2),
        "stopPrice": str(price / 3)}}, alice.token)["placeOco"]
    assert no_exit["code"] == "POSITION_NOT_OPEN"  # nothing bought yet, nothing to sell
    closed = server.gql(CLOSE_POSITION, {"id": pending["id"]}, alice.token)["closePosition"]
    assert closed["status"] == "CANCELLED"
    [(leg, order)] = orders_of(server, pending["id"])
    assert leg == "entry" and str(order.status) == "cancelled"
    balances = server.runtime.paper.desk(alice.paper_account_id, "BTC/USDT").venue \
        .fetch_balance()
    assert balances["USDT"].locked == 0  # the limit buy's quote is free again


def test_open_positions_and_active_exits_are_bounded(server):
    service = server.runtime.positions
    assert (service.max_open_positions, service.max_exits) == (100, 10)
    service.max_open_positions = service.max_exits = 2
    alice = server.user("alice")
    first = open_position(server, alice, quoteAmount="100")
    open_position(server, alice, quoteAmount="10")
    third = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", "quoteAmount": "10"}},
                       alice.token)["openPosition"]
    assert third["code"] == "POSITION_LIMIT_REACHED"
    price = D(first["entryPrice"])
    for _ in range(2):
        placed = server.gql(PLACE_OCO, {"input": {
            "positionId": first["id"], "takeProfitPrice": str(price * 2),
            "stopPrice": str(price / 2), "amount": "0.0001"}}, alice.token)["placeOco"]
        assert placed["status"] == "ACTIVE"
    refused = server.gql(PLACE_TRAILING_STOP, {"input": {
        "positionId": first["id"], "trailPercent": "1", "amount": "0.0001"}}, alice.token)[
        "placeTrailingStop"]
    assert refused["code"] == "EXIT_LIMIT_REACHED"


def test_while_trading_is_halted_no_position_opens_but_one_can_still_be_closed(server):
    alice = server.user("alice")
    position = open_position(server, alice, quoteAmount="100")
    server.runtime.trading.emergency_stop("venue down", actor="operator:ana")
    refused = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", "quoteAmount": "10"}},
                         alice.token)["openPosition"]
    assert refused["code"] == "TRADING_HALTED"
    price = D(position["entryPrice"])
    no_oco = server.gql(PLACE_OCO, {"input": {
        "positionId": position["id"], "takeProfitPrice": str(price * 2),
        "stopPrice": str(price / 2)}}, alice.token)["placeOco"]
    assert no_oco["code"] == "TRADING_HALTED"
    no_buy_stop = server.gql(PLACE_TRAILING_STOP, {"input": {
        "positionId": position["id"], "side": "buy", "trailPercent": "1",
        "amount": "0.0001"}}, alice.token)["placeTrailingStop"]
    assert no_buy_stop["code"] == "TRADING_HALTED"
    assert server.gql(POSITION, {"id": position["id"]}, alice.token)["position"][
        "exits"] == []  # nothing attached
    closed = server.gql(CLOSE_POSITION, {"id": position["id"]}, alice.token)["closePosition"]
    assert closed["status"] == "CLOSED"


def test_a_users_audit_log_lists_their_positions_events_and_no_one_elses(server):
    alice, bob = server.user("alice"), server.user("bob")
    position = open_position(server, alice, quoteAmount="100")
    server.gql(PLACE_TRAILING_STOP, {"input": {"positionId": position["id"],
                                               "trailPercent": "1"}}, alice.token)
    audit = "{ auditLog(first: 50) { edges { node { aggregateType eventType } } } }"

    def kinds(account):
        edges = server.gql(audit, token=account.token)["auditLog"]["edges"]
        return {(e["node"]["aggregateType"], e["node"]["eventType"]) for e in edges}

    assert {("Position", "Opened"), ("Position", "Bought"),
            ("PositionExit", "Attached"), ("PositionExit", "LevelMoved")} <= kinds(alice)
    assert not {kind for kind, _ in kinds(bob)} & {"Position", "PositionExit"}


def test_open_positions_count_into_the_exposure_limit_of_the_next_one(server):
    alice = server.user("alice")
    limits = server.gql("mutation { setRiskLimits(input: {maxExposureQuote: \"150\"}) { "
                        "__typename } }", {}, alice.token)["setRiskLimits"]
    assert limits["__typename"] == "RiskLimits", limits
    first = open_position(server, alice, quoteAmount="100")
    refused = server.gql(OPEN_POSITION, {"input": {"pair": "BTC/USDT", "quoteAmount": "60"}},
                         alice.token)["openPosition"]
    assert refused["code"] == "RISK_LIMIT_REACHED", refused
    assert "maxExposureQuote" in refused["message"]
    server.gql(CLOSE_POSITION, {"id": first["id"]}, alice.token)
    assert open_position(server, alice, quoteAmount="60")["status"] == "OPEN"
