"""A daily loss limit's pause that another writer's change refuses (the API renamed one of
the user's bots while the runner stepped: its copy of the bot is stale, the pause's append
is refused whole) is decided again at once from the log, not lost: the bots pause at the
candle that reached the limit, and the deal that reached it is counted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.risk_limits import RiskLimits
from domain.bots import BotStatus
from domain.dca import DcaConfig
from tests.integration.test_risk_limits import BOT, EVENING, LOSER, World, candles

__all__ = ["candles"]  # (the module's candles fixture)


class FakeRacingExchange(PaperExchange):
    """A paper venue during whose walk another process writes (``race``), once: right after
    the walk in which a deal of its market closed."""

    race = None

    def walk_candle(self, *args, **kwargs):
        result = super().walk_candle(*args, **kwargs)
        market = args[-1] if args else None
        race, engines = FakeRacingExchange.race, getattr(market, "engines", {})
        if race is not None and any(e.closed_deals() for e in engines.values()):
            FakeRacingExchange.race = None
            race()
        return result


class TwoAccounts(World):
    """User ``u1``: a losing bot on one paper account (its venue races when its deal
    closes), a bot that keeps its deal open on another."""

    def __init__(self, url: str):
        self.ids = SequentialIds("risk-race")
        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=self.ids)
        self.bots = []
        for n, config in enumerate((LOSER, BOT)):
            account = self.trading.open_account(owner_id="u1", exchange="paper",
                                                quote_asset="USDT")
            self.trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
            bot_id = self.trading.create_bot(owner_id="u1", name=f"bot {n}",
                                             config=DcaConfig.from_mapping(config),
                                             exchange_account_id=str(account))
            self.trading.start_bot(bot_id, actor="u1")
            self.bots.append(bot_id)

        def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
            return FakeRacingExchange(pair, quote_balance=quote, base_balance=base)

        self.risk = RiskLimits(self.trading)
        self.runner = PaperTrading(self.trading, self.ids, venue, risk=self.risk)
        self.runner.resume()
        self.minute = 0


def test_a_refused_risk_pause_is_decided_again_not_lost(candles, store_url) -> None:
    world = TwoAccounts(store_url)
    loser, other = world.bots
    world.limit(maxDailyLossQuote="0.05")  # the loser's first losing deal reaches it
    FakeRacingExchange.race = lambda: world.trading.rename_bot(other, "renamed", actor="u1")
    world.feed(candles, 59)
    assert FakeRacingExchange.race is None  # the race happened
    opened = {e.originator_id for e in world.events("Deal.Opened", loser)}
    (first_close, *_) = [e for e in world.events("Deal.Closed") if e.originator_id in opened]
    counted = [e.deal_id for e in world.events("UserRisk.ResultCounted")]
    assert first_close.originator_id in counted
    paused = world.events("Bot.RiskPaused")
    assert sorted(e.originator_id for e in paused) == sorted(world.bots)
    assert {world.trading.get_bot(b).status for b in world.bots} == {BotStatus.PAUSED}
    assert [e for e in world.events("Deal.Opened", loser)
            if e.timestamp > first_close.timestamp] == []
