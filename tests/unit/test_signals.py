"""A webhook signal is authenticated over its exact bytes, its fields are checked one by one
with a named code, a stale one is refused, and TradingView's tickers name a bot's pair. The
bot configuration's ``start_condition`` is recorded only when it is not the default, so old
runs encode byte for byte as before."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.transcodings import DcaConfigAsDict
from domain.dca import DcaConfig
from domain.errors import InvalidConfigError
from domain.recording import Cause
from domain.signals import (
    SignalError,
    authenticate,
    check_fresh,
    parse_body,
    read_signal,
    same_pair,
    signature_of,
)
from domain.webhooks import SignalClaim, Webhook, claim_id, recent_signals
from tests.stubs import a_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-for-tests"


def code_of(call) -> tuple[int, str]:
    with pytest.raises(SignalError) as caught:
        call()
    return caught.value.status, caught.value.code


@given(st.binary(max_size=300), st.text(min_size=1, max_size=40))
def test_a_body_signed_with_the_secret_authenticates_and_any_change_does_not(body, secret):
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature_of(secret, body) == header
    authenticate(secret, body, header, None)  # no error
    assert code_of(lambda: authenticate(secret, body + b" ", header, None)) == (
        401, "SIGNAL_BAD_SIGNATURE")
    assert code_of(lambda: authenticate(secret + "x", body, header, None)) == (
        401, "SIGNAL_BAD_SIGNATURE")


def test_the_body_secret_is_the_other_way_and_neither_is_unsigned():
    authenticate(SECRET, b"{}", None, {"secret": SECRET})
    assert code_of(lambda: authenticate(SECRET, b"{}", None, {"secret": SECRET + "!"})) == (
        401, "SIGNAL_BAD_SECRET")
    assert code_of(lambda: authenticate(SECRET, b"{}", None, {"secret": 12})) == (
        401, "SIGNAL_BAD_SECRET")
    assert code_of(lambda: authenticate(SECRET, b"{}", None, {})) == (401, "SIGNAL_UNSIGNED")


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe",
                                  b'{"action": NaN}', b"[" * 10_000,
                                  b'{"action": "buy", "action": "sell"}'])
def test_a_body_that_is_not_a_json_object_is_invalid_json(body):
    assert code_of(lambda: parse_body(body)) == (400, "INVALID_JSON")


def test_a_body_over_the_limit_is_too_large():
    assert code_of(lambda: parse_body(b" " * 20_000)) == (413, "SIGNAL_TOO_LARGE")


def test_numbers_arrive_as_exact_decimals_never_floats():
    signal = read_signal(parse_body(b'{"action": "buy", "amount": 0.1, "price": "87000.50"}'))
    assert signal.amount == Decimal("0.1") and signal.price == Decimal("87000.50")


@pytest.mark.parametrize(("data", "field"), [
    ({"action": "buy", "amount": "-1"}, "amount"),
    ({"action": "buy", "price": "1e999999"}, "price"),
    ({"action": "buy", "bot_id": "not-a-uuid"}, "bot_id"),
    ({"action": "buy", "id": ""}, "id"),
    ({"action": "buy", "id": "x" * 200}, "id"),
    ({"action": "buy", "timestamp": "yesterday"}, "timestamp"),
])
def test_each_bad_field_is_named(data, field):
    with pytest.raises(SignalError) as caught:
        read_signal(data)
    assert (caught.value.code, caught.value.field) == ("INVALID_SIGNAL", field)


@pytest.mark.parametrize("action", [None, "short", 3, "", "BUY "])
def test_unknown_actions_are_refused_and_case_does_not_matter(action):
    if action == "BUY ":
        assert read_signal({"action": action}).action == "buy"
        return
    assert code_of(lambda: read_signal({"action": action})) == (422, "UNKNOWN_ACTION")


@pytest.mark.parametrize(("sent", "stale"), [
    ("2026-03-01T11:59:00Z", False),  # exactly 60 s: still fresh
    ("2026-03-01T11:58:59Z", True),
    (str(int((NOW - timedelta(seconds=61)).timestamp())), True),  # Unix seconds
    (str(int((NOW - timedelta(seconds=5)).timestamp() * 1000)), False),  # milliseconds
    ("2026-03-01T12:00:30Z", False),  # a sender's clock a little ahead
    ("0001-01-01T00:00:00+23:59", True),  # the first moment a date has, in UTC
])
def test_a_signal_older_than_its_timestamp_plus_60_seconds_is_stale(sent, stale):
    signal = read_signal({"action": "sell", "timestamp": sent})
    if stale:
        assert code_of(lambda: check_fresh(signal, NOW)) == (422, "SIGNAL_STALE")
    else:
        check_fresh(signal, NOW)


@pytest.mark.parametrize("sent", ["١٧٧٢٣٦٦٤٠٠", "１７７２３６６４００", "2026-03-01T١٢:00:00Z"])
def test_a_timestamp_in_other_digits_than_ascii_is_refused(sent):
    """Unix seconds in Arabic-Indic digits were read as the very moment they spell."""
    with pytest.raises(SignalError) as caught:
        read_signal({"action": "buy", "timestamp": sent})
    assert (caught.value.code, caught.value.field) == ("INVALID_SIGNAL", "timestamp")


@pytest.mark.parametrize("sent", ["2026-03-01T12:01:01Z", "9999-12-31T23:59:59Z",
                                  "9999-12-31T23:59:59-23:59"])
def test_a_timestamp_more_than_60_seconds_ahead_is_refused_naming_the_field(sent):
    signal = read_signal({"action": "buy", "timestamp": sent})
    with pytest.raises(SignalError) as caught:
        check_fresh(signal, NOW)
    assert (caught.value.code, caught.value.field) == ("INVALID_SIGNAL", "timestamp")


@pytest.mark.parametrize(("sent", "pair", "same"), [
    ("BTCUSDT", "BTC/USDT", True), ("BINANCE:BTCUSDT", "BTC/USDT", True),
    ("btc/usdt", "BTC/USDT", True), ("ETHUSDT", "BTC/USDT", False),
    ("BTCUSDT.P", "BTC/USDT", False),
])
def test_tradingview_tickers_name_a_bots_pair(sent, pair, same):
    assert same_pair(sent, pair) is same


# --- the webhook aggregate -----------------------------------------------------------------


def cause(seconds: int = 0) -> Cause:
    return Cause(NOW + timedelta(seconds=seconds), "tester", f"c-{seconds}")


def test_a_webhooks_signals_read_back_newest_first_with_their_outcomes():
    hook = Webhook.create(uuid4(), cause(), owner_id="u", name=" tv ", bot_id=None,
                          sealed_secret="v1.sealed")
    assert hook.name == "tv" and hook.enabled
    first = hook.receive(cause(1), signal_id="a", action="buy", outcome="accepted", code=None,
                         message="accepted")
    hook.receive(cause(2), signal_id=None, action=None, outcome="refused",
                 code="SIGNAL_UNSIGNED", message="no secret")
    deal = uuid4()
    hook.acted_on(cause(3), first, outcome="done", code=None, message="opened", deal_id=deal)
    events = hook.collect_events()
    assert [(s["number"], s["outcome"], s["code"], s["deal_id"])
            for s in recent_signals(reversed(events))] == [
        (2, "refused", "SIGNAL_UNSIGNED", None), (1, "done", None, deal)]
    assert len(recent_signals(reversed(events), last=1)) == 1


def test_a_deleted_webhook_takes_no_more_commands():
    hook = Webhook.create(uuid4(), cause(), owner_id="u", name="tv", bot_id=None,
                          sealed_secret="v1.sealed")
    hook.set_enabled(cause(1), False)
    hook.set_enabled(cause(2), False)  # already: nothing recorded
    hook.delete(cause(3))
    assert [type(e).__name__ for e in hook.collect_events()] == [
        "Created", "EnabledSet", "Deleted"]
    with pytest.raises(Exception, match="deleted"):
        hook.rotate_secret(cause(4), "v1.other")


def test_a_signal_ids_claim_is_the_same_aggregate_each_time():
    webhook = uuid4()
    claim = SignalClaim.claim(webhook, "tv-1", cause())
    assert claim.id == claim_id(webhook, "tv-1") != claim_id(webhook, "tv-2")
    assert claim_id(uuid4(), "tv-1") != claim.id  # per webhook


# --- start_condition -------------------------------------------------------------------------


def test_start_condition_is_asap_unless_told_and_is_checked():
    assert a_config().start_condition == "asap"
    config = DcaConfig.from_mapping({**a_config().to_mapping(), "start_condition": "Signal"})
    assert config.start_condition == "signal" and config.waits_for_signal
    with pytest.raises(InvalidConfigError) as caught:
        DcaConfig.from_mapping({**a_config().to_mapping(), "start_condition": "never"})
    assert [(v.code, v.field) for v in caught.value.violations] == [
        ("INVALID_START_CONDITION", "start_condition")]


def test_an_asap_configuration_encodes_as_before_the_field_existed():
    encoded = DcaConfigAsDict().encode(a_config())
    assert "start_condition" not in encoded
    assert DcaConfigAsDict().decode(json.loads(json.dumps(encoded, default=str))
                                    ).start_condition == "asap"
    signal = DcaConfigAsDict().encode(a_config(start_condition="signal"))
    assert signal["start_condition"] == "signal"
