"""Plans, subscriptions and wallets as pure domain: money in each currency's minor units,
plan terms checked by name, the subscription's lifecycle told out of order, the wallet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.payments import Wallet
from domain.plans import FREE, PRO, Plan, from_minor, money_in, next_period_end, to_minor
from domain.recording import Cause
from domain.subscriptions import Period, Subscription, SubscriptionStatus

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GRACE = timedelta(days=3)


def cause(at: datetime = T0) -> Cause:
    return Cause(at, "system:test", "c-1")


@given(minor=st.integers(min_value=0, max_value=10**11),
       currency=st.sampled_from(["USD", "THB", "JPY"]))
def test_minor_units_round_trip_exactly(minor, currency):
    amount = from_minor(currency, minor)
    assert to_minor(currency, amount) == minor
    if amount <= 10**9:  # the largest amount a person may give
        assert money_in(currency, amount) == amount


@pytest.mark.parametrize(("currency", "text", "ok"), [
    ("USD", "10.00", True), ("USD", "10.001", False), ("THB", "500.5", True),
    ("JPY", "1000", True), ("JPY", "1000.5", False), ("USD", "-1", False),
    ("XYZ", "1", False)])
def test_amounts_follow_the_currencys_decimals(currency, text, ok):
    if ok:
        assert money_in(currency, Decimal(text)) == Decimal(text)
    else:
        with pytest.raises(DomainError) as refused:
            money_in(currency, Decimal(text))
        assert refused.value.code in ("INVALID_AMOUNT", "UNSUPPORTED_CURRENCY")


def test_a_float_price_is_refused_by_name():
    with pytest.raises(DomainError) as refused:
        money_in("USD", 10.5)
    assert refused.value.code == "FLOAT_NOT_ALLOWED"


def test_periods_end_a_month_or_a_year_later_on_the_months_last_day_at_most():
    jan31 = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert next_period_end(jan31, "month") == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert next_period_end(datetime(2027, 12, 15, tzinfo=UTC), "month") == datetime(
        2028, 1, 15, tzinfo=UTC)
    assert next_period_end(datetime(2028, 2, 29, tzinfo=UTC), "year") == datetime(
        2029, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize(("field", "change"), [
    ("code", {"code": "pro"}), ("period", {"period": "week"}),
    ("max_bots", {"max_bots": -1}), ("features", {"features": ("Live Trading",)}),
    ("name", {"name": " "})])
def test_plan_terms_are_refused_naming_the_field(field, change):
    from dataclasses import replace

    with pytest.raises(DomainError) as refused:
        Plan.define(cause(), replace(PRO, **change))
    assert refused.value.field in (field, "price") and refused.value.code == "INVALID_PLAN"


def test_a_plan_update_is_a_new_version_and_an_unchanged_one_records_nothing():
    plan = Plan.define(cause(), FREE)
    plan.update(cause(), FREE)
    assert plan.version == 1
    from dataclasses import replace

    plan.update(cause(), replace(FREE, max_bots=2))
    assert (plan.version, plan.terms.max_bots) == (2, 2)


def period(status: SubscriptionStatus, told_at: int, end_days: int = 30) -> Period:
    return Period("sub_1", status, T0, T0 + timedelta(days=end_days), uuid4(), 1, False,
                  told_at)


def test_older_news_changes_no_status():
    plan_id = uuid4()
    sub = Subscription.start(cause(), "alice", Period(
        "sub_1", SubscriptionStatus.ACTIVE, T0, T0 + timedelta(days=30), plan_id, 1, False,
        100))
    sub.fail_payment(cause(), 200, GRACE)
    assert sub.status is SubscriptionStatus.PAST_DUE
    sub.observe(cause(), Period("sub_1", SubscriptionStatus.ACTIVE, T0,
                                T0 + timedelta(days=30), plan_id, 1, False, 150), GRACE)
    assert sub.status is SubscriptionStatus.PAST_DUE  # the active of t=150 is older


def test_news_of_another_subscription_is_not_a_renewal_of_the_current_one():
    """Readers that count renewals (``isinstance(event, Subscription.Renewed)``) must not
    count what Stripe said of another subscription: ``OtherTold`` is its own event."""
    sub = Subscription.start(cause(), "alice", period(SubscriptionStatus.ACTIVE, 100))
    sub.collect_events()
    other = Period("sub_2", SubscriptionStatus.ACTIVE, T0, T0 + timedelta(days=30), uuid4(),
                   1, False, 120, created=50)
    sub.note_other(cause(), other, GRACE, "price_2")
    [told] = sub.collect_events()
    assert isinstance(told, Subscription.OtherTold)
    assert not isinstance(told, Subscription.Renewed)
    assert sub.stripe_subscription == "sub_1"
    assert sub.others["sub_2"]["stripe_price"] == "price_2"


def test_another_subscription_at_a_price_no_plan_sells_is_no_fallback_until_priced():
    sub = Subscription.start(cause(), "alice", period(SubscriptionStatus.ACTIVE, 100))
    unsold = Period("sub_2", SubscriptionStatus.ACTIVE, T0, T0 + timedelta(days=30), None,
                    0, False, 120, created=50)
    sub.note_other(cause(), unsold, GRACE, "price_unsold")
    assert sub.unpriced_others() == {"sub_2": "price_unsold"}
    assert sub.live_other(T0) is None  # it entitles nothing
    team = uuid4()
    sub.price_other(cause(), "sub_2", team, 3)
    assert sub.unpriced_others() == {}
    assert sub.live_other(T0) == "sub_2"
    sub.cancel(cause(), 130, [])
    assert sub.fall_back(cause())
    assert (sub.stripe_subscription, sub.plan_id, sub.plan_version, sub.status) == (
        "sub_2", team, 3, SubscriptionStatus.ACTIVE)


def test_expiry_waits_for_the_end_of_grace_and_a_payment_brings_it_back():
    sub = Subscription.start(cause(), "alice", period(SubscriptionStatus.ACTIVE, 100))
    failed_at = T0 + timedelta(days=30)
    sub.fail_payment(cause(failed_at), 200, GRACE)
    assert sub.grace_ends_at == failed_at + GRACE
    assert not sub.is_due_to_expire(failed_at + GRACE - timedelta(seconds=1))
    with pytest.raises(DomainError):
        sub.expire(cause(failed_at + timedelta(days=1)), [])
    sub.expire(cause(failed_at + GRACE), ["bot-2"])
    assert (sub.status, sub.paused_bots) == (SubscriptionStatus.EXPIRED, ["bot-2"])
    assert not sub.is_entitled()
    sub.observe(cause(), period(SubscriptionStatus.ACTIVE, 300, end_days=60), GRACE)
    assert sub.status is SubscriptionStatus.ACTIVE and sub.grace_ends_at is None


def test_an_invoice_is_paid_once_and_refunds_count_what_is_new():
    sub = Subscription.start(cause(), "alice", period(SubscriptionStatus.ACTIVE, 100))
    assert sub.pay_invoice(cause(), "in_1", Decimal("10.00"), "USD", "card")
    assert not sub.pay_invoice(cause(), "in_1", Decimal("10.00"), "USD", "card")
    sub.refund(cause(), "ch_1", Decimal("4.00"), "USD")
    sub.refund(cause(), "ch_1", Decimal("4.00"), "USD")  # told again: nothing new
    sub.refund(cause(), "ch_1", Decimal("10.00"), "USD")
    assert sub.refunds == {"ch_1": Decimal("10.00")}
    assert sum(isinstance(e, Subscription.Refunded) for e in sub.collect_events()) == 2


def test_a_wallet_pays_what_it_holds_and_refunds_may_take_it_below_zero():
    wallet = Wallet.open(cause(), "alice")
    assert wallet.credit(cause(), "THB", Decimal("500.00"), "pi_1")
    assert not wallet.credit(cause(), "THB", Decimal("500.00"), "pi_1")
    wallet.debit(cause(), "THB", Decimal("300.00"), "renewal:1", "renewal")
    with pytest.raises(DomainError) as refused:
        wallet.debit(cause(), "THB", Decimal("300.00"), "renewal:2", "renewal")
    assert refused.value.code == "INSUFFICIENT_WALLET_FUNDS"
    wallet.refund(cause(), "THB", "ch_1", Decimal("500.00"))
    assert wallet.balance("THB") == Decimal("-300.00")


def test_a_payment_and_a_failure_told_in_the_same_second_end_active_either_way():
    for failure_first in (True, False):
        sub = Subscription.start(cause(), "alice", period(SubscriptionStatus.ACTIVE, 100))
        paid = period(SubscriptionStatus.ACTIVE, 200, end_days=60)
        steps = [lambda s: s.fail_payment(cause(), 200, GRACE),
                 lambda s, p=paid: s.observe(cause(), p, GRACE)]
        for step in steps if failure_first else reversed(steps):
            step(sub)
        assert sub.status is SubscriptionStatus.ACTIVE, failure_first
