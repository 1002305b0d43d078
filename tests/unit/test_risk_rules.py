"""Risk limits and the promotion gate as rules: figures in, refusal (or verdict) out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.promotion import PaperRecord, PromotionRules, judge, missed
from domain.recording import Cause
from domain.risk import Exposure, Limits, RiskLimitError, UserRisk, refusal

D = Decimal
money = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
maybe_money = st.none() | money
maybe_count = st.none() | st.integers(min_value=0, max_value=20)


def a_cause(at: datetime) -> Cause:
    return Cause(at, "user-1", "corr")


# --- the limits -----------------------------------------------------------------------------


@given(limits=st.builds(Limits, maybe_count, maybe_money, maybe_money, maybe_money),
       open_deals=st.integers(min_value=0, max_value=25), committed=money,
       adds=money, position=money, opens=st.sampled_from(["deal", "safety_order", "position"]))
def test_a_buy_is_refused_exactly_when_it_would_pass_a_limit_and_names_the_first(
        limits, open_deals, committed, adds, position, opens) -> None:
    position = D(0) if opens != "safety_order" else position
    refused = refusal(limits, Exposure(open_deals, committed), opens=opens, adds_quote=adds,
                      position_quote=position)
    passed = []  # the limits in the order they are checked, as the README lists them
    if opens == "deal" and limits.max_open_deals is not None and (
            open_deals + 1 > limits.max_open_deals):
        passed.append("maxOpenDeals")
    if limits.max_position_quote is not None and position + adds > limits.max_position_quote:
        passed.append("maxPositionQuote")
    if limits.max_exposure_quote is not None and committed + adds > limits.max_exposure_quote:
        passed.append("maxExposureQuote")
    if not passed:
        assert refused is None
    else:
        assert isinstance(refused, RiskLimitError)
        assert (refused.code, refused.limit) == ("RISK_LIMIT_REACHED", passed[0])


def test_reaching_a_limit_exactly_is_allowed_passing_it_by_a_cent_is_not() -> None:
    limits = Limits(max_exposure_quote=D("300"))
    assert refusal(limits, Exposure(2, D("200")), opens="deal", adds_quote=D("100")) is None
    refused = refusal(limits, Exposure(2, D("200.01")), opens="deal", adds_quote=D("100"))
    assert refused.limit == "maxExposureQuote"
    assert "200.01" in refused.message and "300.01" in refused.message
    assert "300" in refused.message


def test_open_deals_limit_counts_deals_only_not_safety_orders_or_positions() -> None:
    limits = Limits(max_open_deals=2)
    full = Exposure(2, D("500"))
    assert refusal(limits, full, opens="deal", adds_quote=D("1")).limit == "maxOpenDeals"
    assert refusal(limits, full, opens="safety_order", adds_quote=D("1")) is None
    assert refusal(limits, full, opens="position", adds_quote=D("1")) is None


def test_a_halted_day_refuses_new_deals_and_positions_but_not_safety_orders() -> None:
    until = datetime(2026, 1, 2, tzinfo=UTC)
    for opens in ("deal", "position"):
        refused = refusal(Limits(), Exposure(), opens=opens, adds_quote=D("1"),
                          halted_until=until)
        assert refused.limit == "maxDailyLossQuote" and "2026-01-02" in refused.message
    assert refusal(Limits(), Exposure(), opens="safety_order", adds_quote=D("1"),
                   halted_until=until) is None


def test_an_unknown_kind_of_buy_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="opens"):
        refusal(Limits(), Exposure(), opens="futures", adds_quote=D("1"))


# --- the daily loss -------------------------------------------------------------------------


def a_user_risk(limit: str | None, at: datetime) -> UserRisk:
    risk = UserRisk.open("user-1", a_cause(at))
    risk.set_limits(a_cause(at), Limits(max_daily_loss_quote=None if limit is None else D(limit)))
    return risk


@given(results=st.lists(st.decimals(min_value=D("-50"), max_value=D("50"), places=2),
                        min_size=1, max_size=30))
def test_the_day_halts_at_the_first_close_whose_running_loss_reaches_the_limit(results) -> None:
    start = datetime(2026, 1, 1, 1, tzinfo=UTC)
    risk = a_user_risk("40", start)
    running, expected_halt = D(0), None
    for i, pnl in enumerate(results):
        running += pnl
        if expected_halt is None and -running >= D("40"):
            expected_halt = i
        reached = risk.count_result(a_cause(start + timedelta(minutes=i)),
                                    deal_id=_id(i), realized_pnl=pnl)
        assert reached == (i == expected_halt)
    assert (risk.halted_until is not None) == (expected_halt is not None)
    assert risk.day_pnl == sum(results)


def test_a_new_day_counts_from_zero_and_lifts_the_halt_at_midnight_utc() -> None:
    evening = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    risk = a_user_risk("10", evening)
    assert risk.count_result(a_cause(evening), _id(1), D("-10")) is True
    assert risk.halted_until == datetime(2026, 1, 2, tzinfo=UTC)
    assert risk.halted_at(evening + timedelta(minutes=59)) is not None
    assert risk.lift_if_due(a_cause(evening + timedelta(minutes=59))) is False
    assert risk.lift_if_due(a_cause(datetime(2026, 1, 2, 0, 0, tzinfo=UTC))) is True
    assert risk.count_result(a_cause(datetime(2026, 1, 2, 0, 5, tzinfo=UTC)), _id(2),
                             D("-9")) is False
    assert (risk.day, risk.day_pnl, risk.day_loss) == ("2026-01-02", D("-9"), D("9"))


def test_setting_the_same_limits_again_records_nothing() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    risk = a_user_risk("10", at)
    risk.collect_events()
    risk.set_limits(a_cause(at), Limits(max_daily_loss_quote=D("10")))
    assert risk.collect_events() == []


def _id(n: int):
    from uuid import UUID

    return UUID(int=n)


# --- the promotion gate ---------------------------------------------------------------------

RULES = PromotionRules()
DAY = 86_400


def test_a_record_passing_every_threshold_exactly_is_promoted() -> None:
    # 7 days, 20 deals, 11 wins (55%), 3 profit on 100 committed (3%)
    record = PaperRecord(7 * DAY, 20, 11, D("3"), D("100"))
    assert missed(record, RULES) == []


def test_a_fresh_bot_misses_every_rule_and_each_names_its_figures() -> None:
    record = PaperRecord(2 * DAY + DAY // 2, 4, 1, D("-1.5"), D("150"))
    problems = {p.code: p.message for p in missed(record, RULES)}
    assert list(problems) == ["PROMOTION_TOO_EARLY", "PROMOTION_TOO_FEW_DEALS",
                              "PROMOTION_WIN_RATE", "PROMOTION_PROFIT"]
    assert "2.50 days" in problems["PROMOTION_TOO_EARLY"]
    assert "4 closed deals" in problems["PROMOTION_TOO_FEW_DEALS"]
    assert "25.00%" in problems["PROMOTION_WIN_RATE"] and "1 of 4" in problems[
        "PROMOTION_WIN_RATE"]
    assert "-1.00%" in problems["PROMOTION_PROFIT"] and "150" in problems["PROMOTION_PROFIT"]


def test_no_deal_at_all_misses_win_rate_and_profit_whatever_the_thresholds() -> None:
    zero = PromotionRules(min_days=D(0), min_closed_deals=0, min_win_rate_pct=D(0),
                          min_profit_pct=D(0))
    codes = [p.code for p in missed(PaperRecord(DAY, 0, 0, D(0), D(0)), zero)]
    assert codes == ["PROMOTION_WIN_RATE", "PROMOTION_PROFIT"]


@given(seconds=st.integers(min_value=0, max_value=30 * DAY),
       deals=st.integers(min_value=1, max_value=60), data=st.data(),
       pnl=st.decimals(min_value=D("-500"), max_value=D("500"), places=4),
       committed=st.decimals(min_value=D("1"), max_value=D("10000"), places=4))
def test_each_rule_is_missed_exactly_when_its_figure_is_below_the_threshold(
        seconds, deals, data, pnl, committed) -> None:
    wins = data.draw(st.integers(min_value=0, max_value=deals))
    codes = {p.code for p in missed(PaperRecord(seconds, deals, wins, pnl, committed), RULES)}
    assert ("PROMOTION_TOO_EARLY" in codes) == (seconds < 7 * DAY)
    assert ("PROMOTION_TOO_FEW_DEALS" in codes) == (deals < 20)
    assert ("PROMOTION_WIN_RATE" in codes) == (wins * 100 < 55 * deals)
    assert ("PROMOTION_PROFIT" in codes) == (pnl * 100 < 3 * committed)
    assert all(o.passed == (o.code not in codes) for o in judge(
        PaperRecord(seconds, deals, wins, pnl, committed), RULES))
