"""A position (opened outside any bot) is judged against the user's maxExposureQuote with
every deal of theirs, whichever process it is opened in: an engine worker that trades none
of the user's bots, or an api process, counts their deals as the log has them. Before, it
counted the deals of its own process only, none, and any position passed the limit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_exposure_holds, open_trading
from application.leased_paper import ApiPaperTrading
from application.positions import Positions
from application.risk_limits import RiskLimits
from application.settings import parse_database_url
from domain.risk import RiskLimitError
from tests.integration.test_engine_leases import venue
from tests.integration.test_risk_limits import EVENING, candles
from tests.integration.test_risk_limits_workers import feed, most_open_deals, seed
from tests.integration.test_risk_pause_leased import RiskWorker

__all__ = ["candles"]  # (the module's candles fixture)
LIMITS = {"maxOpenDeals": 2, "maxExposureQuote": "500"}  # a deal commits 225 (100+50+75)


class ApiProcess:
    """``serve --role api``: trades no bot, opens positions."""

    def __init__(self, url: str, name: str = "api"):

        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=SequentialIds(name))
        self.risk = RiskLimits(self.trading)
        self.paper = ApiPaperTrading(self.trading, self.trading.ids, venue, risk=self.risk)
        open_exposure_holds(parse_database_url(url), self.trading, self.risk)

    def close(self) -> None:
        self.risk.holds.close()
        self.trading.close()


def positions_of(process) -> Positions:
    positions = Positions(process.trading, process.paper,
                          risk_check=process.risk.for_positions())
    process.risk.add_exposure(positions.exposure_of)
    return positions


def open_position(process, positions: Positions, account: str, quote: str):
    """(The process's paper market given a price first: a market buy needs one.)"""
    process.paper.on_candle("BTC/USDT", 0, *(Decimal("90000"),) * 4,
                            process.trading.clock.now())
    return positions.open_position("u1", exchange_account_id=account, pair="BTC/USDT",
                                   quote_amount=Decimal(quote))


def trader_and_other(url: str, where: str):
    """An engine worker that takes the user's bots, and another process (``where``: an
    engine worker, after it, or an api process)."""
    one = RiskWorker(url, "one")
    other = RiskWorker(url, "two") if where == "worker" else ApiProcess(url)
    one.leases.tick()
    if where == "worker":
        other.leases.tick()
    return one, other


@pytest.mark.parametrize("where", ["worker", "api"])
def test_a_position_counts_the_users_deals_traded_by_another_process(candles, postgres_url,
                                                                     where):
    bots = seed(postgres_url, limits=LIMITS)  # four bots on two accounts
    one, other = trader_and_other(postgres_url, where)
    try:
        if where == "worker":
            assert other.paper.bot_ids == set()  # the user is whole on one
        assert one.paper.bot_ids == set(bots)
        feed((one,), candles, range(3))
        assert most_open_deals(postgres_url) == (2, 2)  # 450 committed of 500
        account = one.trading.get_bot(bots[0]).exchange_account_id
        positions = positions_of(other)
        with pytest.raises(RiskLimitError) as refused:
            open_position(other, positions, account, "100")
        assert refused.value.limit == "maxExposureQuote"
        assert not positions.index.of("u1")  # nothing recorded, no order sent
        opened = open_position(other, positions, account, "50")  # 500: the limit exactly
        assert opened.is_open
    finally:
        one.close()
        other.close()
