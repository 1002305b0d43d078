"""A bot stopped without closing its deal leaves its owner's roster, while its deal runs on
to its take profit or stop loss, still holding money: that deal counts against the owner's
maxOpenDeals and maxExposureQuote wherever a buy is judged. Before, a position judged in a
process that does not trade the user's bots counted the roster's bots' deals only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.risk import RiskLimitError
from tests.integration.test_risk_limits import World, candles
from tests.integration.test_risk_limits_workers import feed, seed
from tests.integration.test_risk_positions_workers import (
    open_position,
    positions_of,
    trader_and_other,
)

__all__ = ["candles"]  # (the module's candles fixture)


@pytest.mark.parametrize("restart", [False, True])
def test_a_stopped_bots_open_deal_keeps_the_other_bots_from_passing_max_open_deals(
        candles, tmp_path, restart):
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    world = World(url)
    world.limit(maxOpenDeals=1)
    world.feed(candles, 2)
    first, second = world.bots
    assert world.trading.get_bot(first).open_deal_id is not None
    world.trading.stop_bot(first, actor="u1")  # its deal runs on
    if restart:  # (the stopped bot's deal is followed again from the log)
        world.restart(url)
    world.feed(candles, 3)
    assert world.trading.get_bot(first).open_deal_id is not None
    assert world.trading.get_bot(second).open_deal_id is None
    assert world.events("Order.Submitted", second) == []
    world.trading.close()


@pytest.mark.parametrize("where", ["worker", "api"])
def test_a_position_counts_the_open_deal_of_a_stopped_bot(candles, postgres_url, where):
    """The user's one bot opened a deal (225 committed: 100 bought, 50 and 75 resting) on
    a worker, then was stopped; a position opened elsewhere counts that deal."""
    [bot_id] = seed(postgres_url, accounts=1, per_account=1,
                    limits={"maxExposureQuote": "300"})
    one, other = trader_and_other(postgres_url, where)
    try:
        feed((one,), candles, range(2))
        assert one.trading.get_bot(bot_id).open_deal_id is not None
        one.trading.stop_bot(bot_id, actor="u1")
        account = one.trading.get_bot(bot_id).exchange_account_id
        positions = positions_of(other)
        with pytest.raises(RiskLimitError) as refused:
            open_position(other, positions, account, "100")  # 325 > 300
        assert refused.value.limit == "maxExposureQuote"
        assert "from 225" in str(refused.value)
        assert open_position(other, positions, account, "75").is_open  # 300: exactly
        assert Decimal(one.trading.get_bot(bot_id).deals_opened) == 1
    finally:
        one.close()
        other.close()
