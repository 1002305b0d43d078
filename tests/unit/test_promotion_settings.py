"""The promotion gate's thresholds are server settings (``TRADETAPE_PROMOTION_*``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.server_settings import ServerSettings
from domain.errors import DomainError
from domain.promotion import PromotionRules


def test_the_defaults_are_the_issues_thresholds() -> None:
    assert ServerSettings.from_environ({}).promotion == PromotionRules(
        min_days=Decimal(7), min_closed_deals=20, min_win_rate_pct=Decimal(55),
        min_profit_pct=Decimal(3))


def test_each_threshold_is_read_from_its_variable() -> None:
    rules = ServerSettings.from_environ({
        "TRADETAPE_PROMOTION_MIN_DAYS": "14", "TRADETAPE_PROMOTION_MIN_DEALS": "50",
        "TRADETAPE_PROMOTION_MIN_WIN_RATE_PCT": "60.5",
        "TRADETAPE_PROMOTION_MIN_PROFIT_PCT": "2"}).promotion
    assert rules == PromotionRules(Decimal(14), 50, Decimal("60.5"), Decimal(2))


@pytest.mark.parametrize(("name", "value"), [
    ("TRADETAPE_PROMOTION_MIN_DAYS", "-1"), ("TRADETAPE_PROMOTION_MIN_DEALS", "2.5"),
    ("TRADETAPE_PROMOTION_MIN_WIN_RATE_PCT", "101"), ("TRADETAPE_PROMOTION_MIN_PROFIT_PCT", "x"),
])
def test_a_bad_threshold_stops_the_server_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(DomainError) as refused:
        ServerSettings.from_environ({name: value})
    assert (refused.value.code, refused.value.field) == ("INVALID_SETTING", name)
    assert value in refused.value.message
