"""Signed Stripe events that are not as Stripe sends them: each is refused with a named code
(a ``DomainError``, answered 4xx by the endpoint) and records nothing, whatever part of a
real event is missing or of another type; never an AttributeError or KeyError (a 500 with a
traceback)."""

from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.stripe_objects import StripeEventEarlyError, StripeShapeError
from application.stripe_webhooks import HANDLED
from domain.errors import ConcurrencyConflictError, DomainError
from tests.integration.test_billing_webhooks import USER, open_billing, story
from tests.stripe_events import charge_refunded
from tests.stripe_stub import StripeStub

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=8),
                 st.floats(allow_nan=False, allow_infinity=False),
                 st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
DELETE = object()


@pytest.fixture(scope="module")
def hooks():
    """Billing in memory with the story's first half handled: later events (invoices,
    refunds) meet a subscription, a wallet and links, as they do in production."""
    stub = StripeStub().start()
    trading, billing, hooks = open_billing(stub)
    try:
        customer = billing.customer_of(USER, None)  # linked both ways
        for event in story(customer)[:8]:
            hooks.handle(event)
        yield trading, hooks, story(customer)
    finally:
        trading.close()
        stub.stop()


NUMBERS = itertools.count()


def paths(node, prefix=()) -> list[tuple]:
    """Every place in a JSON value, the value itself first."""
    found = [prefix]
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        found += paths(value, (*prefix, key))
    return found


def mutated(data, event: dict) -> dict:
    """``event`` with one value anywhere in it replaced by junk, or deleted."""
    event = copy.deepcopy(event)
    event["id"] = f"evt_fuzz_{next(NUMBERS)}"  # not a duplicate of the story's
    if data.draw(st.booleans()):  # another handled type, about the same object
        event["type"] = data.draw(st.sampled_from(HANDLED))
    *where, key = data.draw(st.sampled_from(paths(event))) or (None,)
    junk = data.draw(st.one_of(JUNK, st.just(DELETE)))
    if key is None:  # the whole event
        return {} if junk is DELETE else junk
    parent = event
    for step in where:
        parent = parent[step]
    if junk is DELETE:
        del parent[key]
    else:
        parent[key] = junk
    return event


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_a_malformed_event_is_refused_by_name_and_records_nothing(hooks, data):
    trading, handler, events = hooks
    event = mutated(data, data.draw(st.sampled_from(events)))
    before = trading.recorder.max_notification_id()
    try:
        outcome = handler.handle(event)
    except ConcurrencyConflictError:
        raise
    except DomainError as error:
        assert error.code.isupper() and error.message
        assert trading.recorder.max_notification_id() == before
        return
    assert outcome in ("handled", "ignored", "duplicate")


def test_each_kind_of_refusal_is_named(hooks):
    trading, handler, events = hooks
    before = trading.recorder.max_notification_id()
    broken = copy.deepcopy(events[2])  # invoice.paid, its lines a text
    broken["id"], broken["data"]["object"]["lines"] = "evt_lines", "nothing"
    with pytest.raises(StripeShapeError) as shape:
        handler.handle(broken)
    assert shape.value.code == "STRIPE_EVENT_MALFORMED"
    for junk in ([], "evt", None):
        with pytest.raises(StripeShapeError):
            handler.handle(junk)
    created, paid = events[1], events[2]  # customer.subscription.created, invoice.paid
    for n, (event, where, key, value) in enumerate([
            (created, (), "current_period_end", 2**40),  # the year 36812
            (created, (), "current_period_start", -2**40),
            (paid, (), "amount_paid", -1000),  # Stripe's amounts are never negative
            (paid, (), "amount_paid", 10**12),  # nor past twelve digits of cents
            (paid, (), "amount_paid", 10**40),
            (paid, ("lines", "data", 0, "period"), "end", 10**20)]):
        odd = copy.deepcopy(event)
        odd["id"] = f"evt_odd_{n}"
        node = odd["data"]["object"]
        for step in where:
            node = node[step]
        node[key] = value
        with pytest.raises(StripeShapeError):
            handler.handle(odd)
    early = charge_refunded("evt_early", 1, charge="ch_unseen", customer="cus_x",
                            intent="pi_unseen", amount=100, refunded=100, currency="USD")
    with pytest.raises(StripeEventEarlyError) as wait:
        handler.handle(early)
    assert wait.value.code == "STRIPE_EVENT_EARLY"
    assert trading.recorder.max_notification_id() == before
