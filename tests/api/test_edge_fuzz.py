"""Generated bad input at the HTTP edges (a short, derandomized run of what
scripts/fuzz_api.py runs longer): whatever a webhook body or a Decimal argument holds, the
answer is a named code, never a 5xx, a traceback or "Unexpected error.", and a refused
signal trades nothing."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.signals import signature_of
from tests.api.test_webhooks import new_hook, open_deal, signal_bot
from tests.edge_inputs import odd_numbers, webhook_bodies

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
TOP_UP = """mutation($a: Decimal!) { topUp(amount: $a, currency: "USD", method: CARD) {
    __typename } }"""
TOP_UP_LITERAL = 'mutation { topUp(amount: %s, currency: "USD", method: CARD) { __typename } }'


def test_any_webhook_body_is_answered_with_a_code_and_a_refused_one_trades_nothing(
        server, caplog):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    now = [server.clock.current.strftime("%Y-%m-%dT%H:%M:%SZ")]
    caplog.set_level(logging.INFO)

    @FUZZ
    @given(body=webhook_bodies(hook["secret"], bot_id, now), signed=st.booleans())
    def one(body: bytes, signed: bool):
        headers = {"X-Tradetape-Signature": signature_of(hook["secret"], body)} if signed \
            else {}
        deal_before = open_deal(server, bot_id)
        answer = server.client.post(f"/webhooks/{hook['id']}", content=body, headers=headers)
        said = answer.json()
        assert answer.status_code < 500 and "Traceback" not in answer.text, answer.text
        if answer.status_code == 200:
            assert said["status"] in ("accepted", "ignored")
        else:
            assert said["status"] == "refused" and said["code"].isupper(), said
            assert open_deal(server, bot_id) == deal_before  # nothing traded

    one()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert hook["secret"] not in logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_any_decimal_argument_is_the_clients_error_or_taken(server, caplog):
    alice = server.user("alice")

    @FUZZ
    @given(amount=odd_numbers(), literal=st.booleans())
    def one(amount, literal: bool):
        if literal:
            written = json.dumps(amount) if isinstance(amount, str) else str(amount)
            answer = server.post(TOP_UP_LITERAL % written, token=alice.token)
        else:
            answer = server.post(TOP_UP, {"a": amount}, alice.token)
        for error in answer.get("errors") or []:
            assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error

    one()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
