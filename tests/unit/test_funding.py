"""A bot's worst-case capital, the health of an account's requirement, and the FundingPlan
aggregate's lifecycle (given events, a command, the new events and state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dca import DcaConfig
from domain.errors import DomainError
from domain.funding import (
    FundingPlan,
    FundingStatus,
    plan_message,
    requirement_health,
    worst_case_capital,
)
from domain.recording import Cause

T0 = datetime(2026, 12, 1, tzinfo=UTC)
PLAN_ID = UUID(int=7)


def a_cause(minutes: int = 0) -> Cause:
    return Cause(T0 + timedelta(minutes=minutes), "alice", f"c{minutes}")


def config(base: str = "100", safety: str = "50", count: int = 3, scale: str = "2"
           ) -> DcaConfig:
    return DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(base),
                     safety_order_quote=Decimal(safety), max_safety_orders=count,
                     price_deviation_pct=Decimal("1"), safety_volume_scale=Decimal(scale),
                     safety_step_scale=Decimal("1"), take_profit_pct=Decimal("1"))


def test_the_worst_case_is_every_order_of_the_ladder_and_its_fee() -> None:
    # 100 + 50 + 100 + 200 = 450 quote, and 0.1 % of it in fees
    assert worst_case_capital(config()) == Decimal("450.45")
    assert worst_case_capital(config(count=0)) == Decimal("100.1")


@given(st.integers(1, 10_000), st.integers(1, 10_000), st.integers(0, 20),
       st.sampled_from(["0.5", "1", "1.5", "2"]))
def test_the_worst_case_grows_with_each_safety_order(base, safety, count, scale) -> None:
    smaller = worst_case_capital(config(str(base), str(safety), count, scale))
    larger = worst_case_capital(config(str(base), str(safety), count + 1, scale))
    assert larger > smaller >= Decimal(base)
    assert isinstance(larger, Decimal)


@pytest.mark.parametrize(("required", "available", "health"), [
    ("0", "0", "ok"), ("100", "111", "ok"), ("100", "110", "ok"), ("100", "109.99", "warning"),
    ("100", "100", "warning"), ("100", "99.99", "critical"), ("0", "5", "ok")])
def test_health_is_critical_when_short_and_warning_within_ten_percent(required, available,
                                                                      health) -> None:
    assert requirement_health(Decimal(required), Decimal(available)) == health


def a_plan(required: str = "450.45", available: str = "400") -> FundingPlan:
    message = plan_message(bot_name="b", required=Decimal(required),
                           available=Decimal(available),
                           amount=Decimal(required) - Decimal(available), asset="USDT",
                           account_id="acc", safety_orders=3, transfer_from=None,
                           transfer_amount=None)
    return FundingPlan.open(PLAN_ID, a_cause(), bot_id="bot", owner_id="alice",
                            account_id="acc", asset="USDT", required=Decimal(required),
                            available=Decimal(available), transfer_from=None,
                            transfer_amount=None, message=message)


def replay(plan: FundingPlan) -> FundingPlan:
    events = plan.collect_events()
    again = None
    for event in events:
        again = event.mutate(again)
    return again


def test_a_plan_records_the_amount_missing_and_says_it_with_the_figures() -> None:
    plan = a_plan()
    assert (plan.status, plan.amount) == (FundingStatus.AWAITING_DEPOSIT, Decimal("50.45"))
    assert plan.message == ("Bot b needs 450.45 USDT at worst (base order, 3 safety orders "
                            "and fees); account acc has 400 USDT free after its other "
                            "running bots: deposit 50.45 USDT.")
    with pytest.raises(DomainError) as refused:
        a_plan(available="450.45")
    assert refused.value.code == "FUNDING_NOT_NEEDED"


def test_a_covering_balance_readies_it_and_executing_closes_it() -> None:
    plan = a_plan()
    assert plan.observe(a_cause(1), Decimal("450")) is False  # still short: nothing recorded
    assert plan.observe(a_cause(2), Decimal("451")) is True
    assert plan.status is FundingStatus.READY_TO_EXECUTE
    assert plan.observe(a_cause(3), Decimal("10")) is True  # withdrawn again
    assert plan.status is FundingStatus.AWAITING_DEPOSIT
    with pytest.raises(DomainError) as refused:
        plan.execute(a_cause(4))
    assert refused.value.code == "FUNDING_PLAN_NOT_READY"
    plan.observe(a_cause(5), Decimal("500"))
    plan.execute(a_cause(6))
    again = replay(plan)
    assert again.status is FundingStatus.EXECUTED and again.available == Decimal("500")
    with pytest.raises(DomainError) as closed:
        again.cancel(a_cause(7), "too late")
    assert closed.value.code == "FUNDING_PLAN_CLOSED"


def test_a_cancelled_plan_keeps_its_reason() -> None:
    plan = a_plan()
    plan.cancel(a_cause(1), "cancelled by its owner")
    again = replay(plan)
    assert (again.status, again.reason) == (FundingStatus.CANCELLED, "cancelled by its owner")
    assert not again.is_open
