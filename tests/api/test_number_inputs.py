"""Numbers sent over GraphQL are bounded like every typed number (issue 10, finding 2):
``createBot`` refuses "1e999999" with a named rule and stores nothing, ``dcaPlan`` answers
with the rule instead of "Unexpected error.", and a bot stored before the bounds existed
fails alone in the engine loop while every other user's bot trades that candle."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from application.replay import read_log
from domain.bots import BotStatus
from domain.dca import DcaConfig
from tests.api.conftest import CONFIG, CREATE_BOT

PLAN = """query($c: DcaConfigInput!, $p: String!) { dcaPlan(config: $c, price: $p) {
    __typename ... on DcaPlan { pair } ... on InputErrors { code errors { code field rule } } }
}"""


def bots_created(server) -> int:
    return sum(n.topic.endswith("Bot.Created") for n in read_log(server.runtime.trading))


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("takeProfitPct", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("safetyVolumeScale", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("safetyOrderQuote", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("baseOrderQuote", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("baseOrderQuote", "1e-999999", "EXPONENT_OUT_OF_RANGE"),
    ("takeProfitPct", "١٢", "INVALID_NUMBER"),
    ("baseOrderQuote", "1_0", "INVALID_NUMBER"),
    ("baseOrderQuote", "100.00000000000000000000000000001", "TOO_MANY_DIGITS"),
    ("safetyVolumeScale", "11", "OUT_OF_RANGE"),
    ("baseOrderQuote", "10000000000000", "OUT_OF_RANGE"),
])
def test_create_bot_and_dca_plan_refuse_numbers_out_of_bounds_naming_the_rule(
        server, field, value, rule):
    alice = server.user("alice")
    config = {**CONFIG, field: value}
    created = server.gql(CREATE_BOT, {"name": "big", "config": config}, alice.token)
    refused = created["createBot"]
    assert refused["code"] == "INVALID_CONFIG"
    assert [(e["field"], e["rule"]) for e in refused["errors"]] == [(field, rule)]
    assert bots_created(server) == 0
    plan = server.gql(PLAN, {"c": config, "p": "100"})["dcaPlan"]
    assert plan["errors"] == [{"code": "INVALID_CONFIG", "field": field, "rule": rule}]


@pytest.mark.parametrize(("price", "code"), [
    ("1e999999", "EXPONENT_OUT_OF_RANGE"), ("1e-999999", "EXPONENT_OUT_OF_RANGE"),
    ("١٠٠", "INVALID_NUMBER"), ("0.0000000000001", "OUT_OF_RANGE")])
def test_dca_plan_refuses_a_price_out_of_bounds(server, price, code):
    plan = server.gql(PLAN, {"c": CONFIG, "p": price})["dcaPlan"]
    assert (plan["code"], plan["errors"][0]["field"]) == (code, "price")


def test_a_bot_stored_before_the_bounds_fails_alone_and_other_users_trade_that_candle(server):
    mallory, alice = server.user("mallory"), server.user("alice")
    # Stored as an older version stored it, without today's rules; started first, so the
    # engine meets it before anyone else's bot.
    trading = server.runtime.trading
    poisoned = DcaConfig.restore({**vars(DcaConfig.from_mapping(_snake(CONFIG))),
                                  "take_profit_pct": Decimal("1e999999")})
    old_bot = trading.create_bot(owner_id=mallory.user_id, name="old", config=poisoned,
                                 exchange_account_id=mallory.paper_account_id)
    trading.start_bot(old_bot, actor=mallory.user_id)
    server.runtime.paper.follow(old_bot)
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)

    server.step()

    assert trading.get_bot(UUID(bot_id)).open_deal_id is not None  # alice's deal opened
    failed = trading.get_bot(old_bot)
    assert failed.status is BotStatus.ERROR and "Overflow" in failed.error_reason
    assert server.runtime.loop.health.last_error is None
    server.step()  # and the loop goes on, without the failed bot
    assert server.runtime.paper.bot_ids == {UUID(bot_id)}


def _snake(config: dict) -> dict:
    return {"".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key): value
            for key, value in config.items()}


TOP_UP_LITERAL = """mutation {{ topUp(amount: {amount}, currency: "USD", method: CARD) {{
    __typename }} }}"""
TOP_UP = """mutation($a: Decimal!) { topUp(amount: $a, currency: "USD", method: CARD) {
    __typename } }"""


@pytest.mark.parametrize(("amount", "rule"), [
    ('"1e999999"', "EXPONENT_OUT_OF_RANGE"), ('"NaN"', "INVALID_NUMBER"),
    ('"١٢"', "INVALID_NUMBER"), ('"-0"', None), ("5", "INVALID_NUMBER"),
    ("1e999999", "INVALID_NUMBER"), (f'"1.{"1" * 39}"', "TOO_MANY_DIGITS")])
def test_a_decimal_argument_refused_in_the_document_is_the_clients_error_naming_the_rule(
        server, caplog, amount, rule):
    """A Decimal typed in the document itself (not a variable) and refused was logged as a
    server fault with its traceback and answered "Unexpected error."."""
    alice = server.user("alice")
    answer = server.post(TOP_UP_LITERAL.format(amount=amount), token=alice.token)
    if rule is None:  # "-0" is a number: the top-up's own rules answer it
        assert answer.get("errors") is None, answer
        return
    [error] = answer["errors"]
    assert answer["data"] is None
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert rule in error["message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_an_object_typed_where_a_decimal_goes_is_not_echoed_back(server):
    """graphql-core ends that message with "; found: { ... }", the value sent: a key pasted
    in the wrong field must not come back in the answer (nor the rule get lost)."""
    alice = server.user("alice")
    answer = server.post(TOP_UP_LITERAL.format(amount='{x: "K-7f3a9c1e5b"}'),
                         token=alice.token)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "INVALID_NUMBER" in error["message"]
    assert "K-7f3a9c1e5b" not in str(answer)


def test_a_decimal_variable_refused_names_the_rule_like_a_literal(server):
    alice = server.user("alice")
    [error] = server.post(TOP_UP, {"a": "1e999999"}, alice.token)["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "EXPONENT_OUT_OF_RANGE" in error["message"]


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                    "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"])
@pytest.mark.parametrize("query", [
    '{ portfolio(asOf: "%s") { maxDrawdown } }', '{ entitlements(asOf: "%s") { features } }',
    '{ promotionCheck(botId: "b", asOf: "%s") { wins } }'])
def test_a_moment_past_what_a_date_holds_is_the_clients_error_not_a_fault(
        server, caplog, query, moment):
    """The first and last moments a date has, in another offset than UTC, were faults
    ("Unexpected error.") where they were converted to UTC or a period was added."""
    alice = server.user("alice")
    [error] = server.post(query % moment, token=alice.token)["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "INVALID_TIME" in error["message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
