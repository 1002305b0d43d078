"""Stripe's events in any order, each delivered twice: the same subscription and the same
billing history as when they arrive once, in order. Also: both API shapes, plan versions
kept until renewal, and the wallet (top-ups, refunds)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SettableClock
from adapters.payments.stripe_gateway import StripeGateway
from application.billing import Billing
from application.billing_history import billing_history
from application.billing_settings import BillingSettings
from application.bootstrap import open_trading
from application.stripe_objects import StripeEventEarlyError
from application.stripe_webhooks import StripeWebhooks
from domain.payments import StripeLink, Wallet, wallet_id
from domain.plans import PlanTerms, from_minor
from domain.subscriptions import Period, Subscription, SubscriptionStatus, subscription_id
from projections.billing_ledger import ENTRIES, BillingLedger, account_balances, billing_report
from projections.rebuild import rebuild
from tests.projection_stubs import catch_up, dump, view_store
from tests.stripe_events import (
    charge_refunded,
    checkout_completed,
    invoice_event,
    payment_intent_event,
    subscription_event,
)
from tests.stripe_stub import API_KEY, StripeStub

T = 1_772_366_400
DAY = 86_400
PRICE = "price_pro_test"
USER = "6f1c1f0e-0000-4000-8000-00000000a11c"


@pytest.fixture(scope="module")
def stub():
    stub = StripeStub().start()
    yield stub
    stub.stop()


def open_billing(stub: StripeStub, url: str = "memory"):
    clock = SettableClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    trading = open_trading(url, clock=clock, ids=SequentialIds("billing"))
    billing = Billing(trading, BillingSettings(enabled=True, price_pro=PRICE),
                      gateway=StripeGateway(API_KEY, stub.url))
    billing.catalogue.ensure_defaults()
    return trading, billing, StripeWebhooks(billing)


def story(customer: str) -> list[dict]:
    """A month paid, the next payment failing, then paid; a PromptPay top-up, refunded in
    part. Two shapes mixed, as a Stripe account upgraded mid-way sends them."""
    sub, month, later = "sub_story", (T, T + 30 * DAY), (T + 30 * DAY, T + 60 * DAY)
    common = {"sub": sub, "customer": customer, "price": PRICE}
    return [
        checkout_completed("evt_1", T + 1, user=USER, customer=customer, subscription=sub),
        subscription_event("customer.subscription.created", "evt_2", T + 2, status="active",
                           period=month, **common),
        invoice_event("invoice.paid", "evt_3", T + 3, invoice="in_1", amount=1000,
                      period=month, charge="ch_in_1", **common),
        invoice_event("invoice.payment_failed", "evt_4", T + 30 * DAY, invoice="in_2",
                      amount=1000, period=later, shape="2025", **common),
        subscription_event("customer.subscription.updated", "evt_5", T + 30 * DAY + 1,
                           status="past_due", period=later, shape="2025", **common),
        invoice_event("invoice.paid", "evt_6", T + 31 * DAY, invoice="in_2", amount=1000,
                      period=later, shape="2025", **common),
        subscription_event("customer.subscription.updated", "evt_7", T + 31 * DAY + 1,
                           status="active", period=later, shape="2025", **common),
        payment_intent_event("payment_intent.succeeded", "evt_8", T + 32 * DAY,
                             intent="pi_topup", customer=customer, user=USER, amount=50000,
                             currency="THB"),
        charge_refunded("evt_9", T + 33 * DAY, charge="ch_pi_topup", customer=customer,
                        intent="pi_topup", amount=50000, refunded=20000, currency="THB"),
        charge_refunded("evt_10", T + 34 * DAY, charge="ch_in_1", customer=customer,
                        intent=None, amount=1000, refunded=1000, currency="USD"),
    ]


def ledger_of(trading) -> tuple:
    """The ledger's accounts and its entries (without their log positions and times,
    which depend on the order events arrived in)."""
    store = view_store("memory")
    try:
        catch_up(trading, store, [BillingLedger], batch_size=3)
        entries = sorted((r["kind"], r["reference"], r["account"], r["currency"],
                          r["debit"], r["credit"]) for r in store.select(ENTRIES))
        return tuple(sorted(tuple(r.items()) for r in account_balances(store))), tuple(entries)
    finally:
        store.close()


def outcome(trading, billing) -> tuple:
    sub = billing.subscription(USER)
    wallet = trading.load(wallet_id(USER), Wallet)
    history = sorted((e.kind, e.reference, e.amount, e.currency)
                     for e in billing_history(trading, USER))
    return (sub.status, sub.current_period_end, sub.plan_id, sub.plan_version,
            sub.grace_ends_at, sorted(sub.paid_invoices), dict(sub.refunds),
            dict(wallet.balances), history, ledger_of(trading))


@pytest.fixture(scope="module")
def in_order(stub):
    customer = _customer(stub)
    return customer, deliver_all_linked(stub, story(customer), customer)


def _customer(stub) -> str:
    trading, billing, _ = open_billing(stub)
    try:
        return billing.customer_of(USER, None)
    finally:
        trading.close()


def test_the_story_in_order_ends_active_with_two_invoices_and_a_wallet(stub, in_order):
    _, (status, period_end, *_, paid, refunds, balances, history, _) = in_order
    assert status.value == "active"
    assert period_end == datetime.fromtimestamp(T + 60 * DAY, UTC)
    assert paid == ["in_1", "in_2"]
    assert refunds == {"ch_in_1": Decimal("10.00")}
    assert balances == {"THB": Decimal("300.00")}
    assert ("top_up", "pi_topup", Decimal("500.00"), "THB") in history
    assert ("wallet_refund", "refund:ch_pi_topup", Decimal("200.00"), "THB") in history


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False))
def test_twice_and_shuffled_gives_the_same_end(stub, in_order, order):
    customer, expected = in_order
    events = story(customer) * 2
    order.shuffle(events)
    assert deliver_all_linked(stub, events, customer) == expected


def open_linked(stub, customer: str, url: str = "memory"):
    """``open_billing`` where the user's customer is linked (at checkout, as the server
    does)."""
    trading, billing, hooks = open_billing(stub, url)
    cause = trading.cause(USER)
    trading.save_all(StripeLink.make(cause, "customer-of", USER, customer),
                     StripeLink.make(cause, "customer", customer, USER))
    return trading, billing, hooks


def deliver_all_linked(stub, events, customer, result=outcome):
    """Into a new store where the user's customer is linked, every event in turn; then
    ``result(trading, billing)``."""
    trading, billing, hooks = open_linked(stub, customer)
    try:
        redeliver(hooks, events)
        return result(trading, billing)
    finally:
        trading.close()


def redeliver(hooks: StripeWebhooks, events: list[dict]) -> None:
    """As Stripe does: an event whose handler failed is delivered again later."""
    for _ in range(len(events)):
        failed = []
        for event in events:
            try:
                hooks.handle(event)
            except StripeEventEarlyError:
                failed.append(event)
        if not failed:
            return
        events = failed
    raise AssertionError(f"never handled: {[e['id'] for e in events]}")


def test_a_plan_change_reaches_a_subscriber_at_renewal_only(stub):
    trading, billing, hooks = open_billing(stub)
    try:
        customer = billing.customer_of(USER, None)
        [first, created, paid, *_] = story(customer)
        for event in (first, created, paid):
            hooks.handle(event)
        billing.catalogue.update("PRO", "operator:test", max_bots=3)
        assert billing.entitlements.of(USER).plan.max_bots == 5  # what they bought
        renewal = invoice_event("invoice.paid", "evt_renew", T + 30 * DAY, invoice="in_9",
                                sub="sub_story", customer=customer, price=PRICE,
                                amount=1000, period=(T + 30 * DAY, T + 60 * DAY))
        hooks.handle(renewal)
        assert billing.entitlements.of(USER).plan.max_bots == 3
    finally:
        trading.close()


def test_a_deleted_subscription_is_cancelled_and_free_limits_apply(stub):
    trading, billing, hooks = open_billing(stub)
    try:
        customer = billing.customer_of(USER, None)
        for event in story(customer)[:3]:
            hooks.handle(event)
        deleted = subscription_event("customer.subscription.deleted", "evt_del", T + 9,
                                     sub="sub_story", customer=customer, price=PRICE,
                                     status="canceled", period=(T, T + 30 * DAY))
        assert hooks.handle(deleted) == "handled"
        assert billing.subscription(USER).status.value == "cancelled"
        *_, last = trading.repository.event_store.get(subscription_id(USER))
        assert (type(last).__name__, last.correlation_id) == ("Cancelled", "stripe:evt_del")
        assert billing.entitlements.of(USER).plan.code == "FREE"
    finally:
        trading.close()


def test_the_settings_read_the_environment():
    env = {"TRADETAPE_STRIPE_API_KEY": "sk_test_x", "TRADETAPE_GRACE_DAYS": "5"}
    settings = BillingSettings.from_environ(env)
    assert settings.enabled and settings.grace_days == 5
    assert "sk_test_x" not in repr(settings)
    assert not BillingSettings.from_environ({**env, "TRADETAPE_BILLING": "off"}).enabled
    assert BillingSettings.from_environ({"TRADETAPE_BILLING": "on"}).enabled
    assert replace(settings, grace_days=3).grace.days == 3


def test_the_ledger_balances_and_a_rebuild_equals_it(stub, store_url):
    trading, billing, hooks = open_billing(stub, store_url)
    store = view_store(store_url)
    try:
        customer = billing.customer_of(USER, None)
        events = story(customer)
        for event in events[:5]:
            hooks.handle(event)
        catch_up(trading, store, [BillingLedger], batch_size=2)
        for event in events[5:]:
            hooks.handle(event)
        catch_up(trading, store, [BillingLedger], batch_size=3)
        incremental = dump(store, [BillingLedger])
        rebuild(trading, store, [BillingLedger], batch_size=1000)
        assert dump(store, [BillingLedger]) == incremental

        accounts = {(r["account"], r["currency"]): r["balance"]
                    for r in account_balances(store)}
        for currency in ("USD", "THB"):
            assert sum(v for (_, c), v in accounts.items() if c == currency) == 0
        for (account, currency), balance in accounts.items():
            entries = store.select(ENTRIES, "account = ? AND currency = ?",
                                   (account, currency))
            assert balance == sum(e["debit"] - e["credit"] for e in entries)
        assert accounts[("revenue:subscriptions", "USD")] == Decimal("-20.00")
        assert accounts[("revenue:refunds", "USD")] == Decimal("10.00")
        assert accounts[(f"wallet:{USER}", "THB")] == Decimal("-300.00")
        report = billing_report(store, "2026-03")
        assert report["currencies"]["USD"]["revenue"] == Decimal("20.00")
        assert report["currencies"]["USD"]["net_revenue"] == Decimal("10.00")
        assert report["currencies"]["THB"]["top_ups"] == Decimal("500.00")
    finally:
        store.close()
        trading.close()


MOVES = st.lists(st.tuples(
    st.sampled_from(["card", "refund", "top_up", "renewal", "wallet_refund"]),
    st.integers(min_value=1, max_value=10**7),  # minor units
    st.sampled_from(["USD", "THB", "JPY"])), min_size=1, max_size=25)


@settings(max_examples=15, deadline=None)
@given(moves=MOVES, batch=st.integers(min_value=1, max_value=7))
def test_any_payments_keep_the_ledger_balanced_and_a_rebuild_equal(moves, batch):
    clock = SettableClock(datetime(2026, 11, 1, tzinfo=UTC))
    trading = open_trading("memory", clock=clock, ids=SequentialIds("ledger"))
    store = view_store("memory")
    try:
        cause = trading.cause("system:test")
        sub = Subscription.start(cause, USER, Period(
            "sub_1", SubscriptionStatus.ACTIVE, clock.now(), clock.now(),
            trading.ids.new_id(), 1, False, 1))
        wallet = Wallet.open(cause, USER)
        for n, (kind, minor, currency) in enumerate(moves):
            amount, ref = from_minor(currency, minor), f"ref-{n}"
            if kind == "card":
                sub.pay_invoice(cause, ref, amount, currency, "card")
            elif kind == "refund":
                sub.refund(cause, ref, amount, currency)
            elif kind == "top_up":
                wallet.credit(cause, currency, amount, ref)
            elif kind == "wallet_refund":
                wallet.refund(cause, currency, ref, amount)
            elif wallet.balance(currency) >= amount:
                wallet.debit(cause, currency, amount, ref, "renewal")
            trading.save_all(sub, wallet)
            if n % batch == 0:
                catch_up(trading, store, [BillingLedger], batch_size=batch)
        catch_up(trading, store, [BillingLedger], batch_size=batch)
        incremental = dump(store, [BillingLedger])
        rebuild(trading, store, [BillingLedger], batch_size=1000)
        assert dump(store, [BillingLedger]) == incremental
        totals: dict[str, Decimal] = {}
        for row in account_balances(store):
            totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["balance"]
        assert all(total == 0 for total in totals.values()), totals
        wallet_rows = {r["currency"]: r["balance"] for r in account_balances(store)
                       if r["account"] == f"wallet:{USER}"}
        for currency, balance in wallet.balances.items():
            assert -wallet_rows.get(currency, Decimal(0)) == balance  # owed to the user
    finally:
        store.close()
        trading.close()


def two_subscriptions(customer: str) -> list[dict]:
    """``sub_a`` bought, then replaced by ``sub_b`` (created later at Stripe), ``sub_a``
    ended, ``sub_b``'s next payment failed: each told by its own object."""
    a, b = (T, T + 30 * DAY), (T + 5 * DAY, T + 35 * DAY)

    def told(kind, event_id, at, sub, status, period, created):
        return subscription_event(kind, event_id, at, sub=sub, customer=customer,
                                  price=PRICE, status=status, period=period,
                                  sub_created=created)

    return [told("customer.subscription.created", "evt_a1", T + 2, "sub_a", "active", a, T),
            told("customer.subscription.created", "evt_b1", T + 5 * DAY + 2, "sub_b",
                 "active", b, T + 5 * DAY),
            told("customer.subscription.deleted", "evt_a2", T + 5 * DAY + 3, "sub_a",
                 "canceled", a, T),
            told("customer.subscription.updated", "evt_b2", T + 35 * DAY, "sub_b",
                 "past_due", b, T + 5 * DAY),
            invoice_event("invoice.paid", "evt_a3", T + 3, invoice="in_a1", sub="sub_a",
                          customer=customer, price=PRICE, amount=1000, period=a)]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False))
def test_the_subscription_created_last_is_current_whatever_the_order(stub, order):
    customer = _customer(stub)
    events = two_subscriptions(customer) * 2
    order.shuffle(events)

    def current(trading, billing) -> tuple:
        sub = billing.subscription(USER)
        return (sub.stripe_subscription, sub.status.value, sub.current_period_end,
                sub.grace_ends_at - trading.clock.now(), sorted(sub.paid_invoices))

    assert deliver_all_linked(stub, events, customer, current) == (
        "sub_b", "past_due", datetime.fromtimestamp(T + 35 * DAY, UTC),
        timedelta(days=BillingSettings().grace_days),
        ["in_a1"])  # sub_a's invoice paid, whichever was current then


def bought_and_ended(customer: str) -> list[dict]:
    """``sub_gone`` bought, paid, updated, then ended: each told by its own event."""
    month = (T, T + 30 * DAY)

    def told(kind, event_id, at, status):
        return subscription_event(kind, event_id, at, sub="sub_gone", customer=customer,
                                  price=PRICE, status=status, period=month, sub_created=T)

    return [told("customer.subscription.created", "evt_g1", T + 2, "active"),
            invoice_event("invoice.paid", "evt_g2", T + 3, invoice="in_g1", sub="sub_gone",
                          customer=customer, price=PRICE, amount=1000, period=month),
            told("customer.subscription.updated", "evt_g3", T + 4, "active"),
            told("customer.subscription.deleted", "evt_g4", T + 5, "canceled")]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False))
def test_a_deleted_subscription_is_never_active_whatever_the_order(stub, order):
    """Whatever order its events arrive in (each twice), a subscription Stripe deleted ends
    cancelled, never active, its invoice recorded as paid."""
    customer = _customer(stub)
    events = bought_and_ended(customer) * 2
    order.shuffle(events)

    def current(trading, billing) -> tuple:
        sub = billing.subscription(USER)
        return sub.stripe_subscription, sub.status, sorted(sub.paid_invoices)

    assert deliver_all_linked(stub, events, customer, current) == (
        "sub_gone", SubscriptionStatus.CANCELLED, ["in_g1"])


def newer_ended_older_paid(customer: str) -> list[dict]:
    """``sub_old`` bought, ``sub_new`` bought later (the current one), ``sub_old`` renewed
    and paid while not current, ``sub_new`` ended: each told by its own event."""
    month, renewed, newer = (T, T + 30 * DAY), (T + 30 * DAY, T + 60 * DAY), (
        T + 5 * DAY, T + 35 * DAY)

    def told(kind, event_id, at, sub, status, period, created):
        return subscription_event(kind, event_id, at, sub=sub, customer=customer,
                                  price=PRICE, status=status, period=period,
                                  sub_created=created)

    return [told("customer.subscription.created", "evt_o1", T + 2, "sub_old", "active",
                 month, T),
            told("customer.subscription.created", "evt_n1", T + 5 * DAY + 2, "sub_new",
                 "active", newer, T + 5 * DAY),
            told("customer.subscription.updated", "evt_o2", T + 30 * DAY, "sub_old",
                 "active", renewed, T),
            invoice_event("invoice.paid", "evt_o3", T + 30 * DAY + 1, invoice="in_o2",
                          sub="sub_old", customer=customer, price=PRICE, amount=1000,
                          period=renewed),
            told("customer.subscription.deleted", "evt_n2", T + 31 * DAY, "sub_new",
                 "canceled", newer, T + 5 * DAY)]


def fallen_back(trading, billing) -> tuple:
    sub = billing.subscription(USER)
    return (sub.stripe_subscription, sub.status, sub.current_period_end, sub.grace_ends_at,
            sorted(sub.paid_invoices), sub.others["sub_new"]["status"])


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False))
def test_the_newer_one_ended_the_user_falls_back_whatever_the_order(stub, order):
    """Whatever order (each event twice), the user ends on ``sub_old``, active for its
    renewed month: the newer one's end leaves them on the one they still pay for."""
    customer = _customer(stub)
    events = newer_ended_older_paid(customer) * 2
    order.shuffle(events)
    assert deliver_all_linked(stub, events, customer, fallen_back) == (
        "sub_old", SubscriptionStatus.ACTIVE, datetime.fromtimestamp(T + 60 * DAY, UTC), None,
        ["in_o2"], SubscriptionStatus.CANCELLED)


def stored_then_reopened(stub, customer: str, url: str, events: list[dict]):
    """``events`` delivered into the store at ``url``, then the store opened again by a
    new connection: the subscription as written, and the new ``open_billing``."""
    trading, billing, hooks = open_linked(stub, customer, url)
    try:
        redeliver(hooks, events)
        written = billing.subscription(USER)
    finally:
        trading.close()
    return written, open_billing(stub, url)


def test_the_fallback_is_read_back_from_the_store(stub, persistent_store_url):
    """Stored (SQLite, PostgreSQL) and read by a new connection: the same subscription,
    and the others as they were told."""
    customer = _customer(stub)
    written, (trading, billing, _) = stored_then_reopened(
        stub, customer, persistent_store_url, newer_ended_older_paid(customer))
    try:
        read = billing.subscription(USER)
        assert (read.stripe_subscription, read.status, read.others) == (
            written.stripe_subscription, written.status, written.others)
        assert (read.stripe_subscription, read.status) == ("sub_old",
                                                          SubscriptionStatus.ACTIVE)
    finally:
        trading.close()


def test_a_subscription_at_a_price_no_plan_sells_is_read_back_and_priced_later(
        stub, persistent_store_url):
    """Stored (SQLite, PostgreSQL): another subscription at a price no plan sells is kept
    with its price and no plan; read by a new connection, it entitles by the plan that
    sells the price once one does, when the current one ends."""
    customer, unsold = _customer(stub), "price_team_unsold"

    def told(kind, event_id, at, sub, status, price, created):
        return subscription_event(kind, event_id, at, sub=sub, customer=customer,
                                  price=price, status=status, period=(T, T + 30 * DAY),
                                  sub_created=created)

    written, (trading, billing, hooks) = stored_then_reopened(
        stub, customer, persistent_store_url, [
            told("customer.subscription.created", "evt_c1", T + 5, "sub_cur", "active",
                 PRICE, T + 5),
            told("customer.subscription.created", "evt_t1", T + 6, "sub_team", "active",
                 unsold, T)])
    try:
        read = billing.subscription(USER)
        assert read.others == written.others
        assert read.unpriced_others() == {"sub_team": unsold}
        billing.catalogue.create(PlanTerms(code="TEAM", name="Team", price=Decimal("30.00"),
                                           currency="USD", period="month",
                                           stripe_price=unsold, max_bots=20), "ops")
        redeliver(hooks, [told("customer.subscription.deleted", "evt_c2", T + 9, "sub_cur",
                               "canceled", PRICE, T + 5)])
        read = billing.subscription(USER)
        assert (read.stripe_subscription, read.status) == ("sub_team",
                                                           SubscriptionStatus.ACTIVE)
        assert billing.entitlements.of(USER).plan.code == "TEAM"
    finally:
        trading.close()
