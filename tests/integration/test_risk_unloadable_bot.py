"""A bot no engine worker can load (its open deal holds an event of a newer code version)
must not stop its user's other bots, nor let them pass the user's count limits: the bot
is surfaced as failed (``BOT_NOT_LOADABLE``), its deal is counted as its events say, and
the others trade up to the limit."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from application.risk_limits import RiskLimits
from domain.bots import BotStatus
from tests.integration.test_engine_leases import venue
from tests.integration.test_risk_limits import EVENING, candles
from tests.integration.test_risk_limits_workers import feed, seed
from tests.integration.test_risk_pause_leased import RiskWorker

__all__ = ["candles"]  # (the module's candles fixture)


def open_deals(url: str, owner: str = "u1") -> tuple[int, int]:
    """The most deals ``owner`` had open at once (the log walked in order, decoding only
    opens and ends: the broken deal's newer event is not one), and how many opened."""
    trading = open_trading(url)
    try:
        owners: dict[UUID, str] = {}
        open_now = most = opened = 0
        for note in read_log(trading):
            kind = note.topic.rsplit(".", 1)[-1]
            if not note.topic.startswith("domain.deals:Deal.") or kind not in (
                    "Opened", "Closed", "Cancelled"):
                continue
            if kind == "Opened":
                owners[note.originator_id] = trading.mapper.to_domain_event(note).owner_id
                opened += owners[note.originator_id] == owner
                open_now += owners[note.originator_id] == owner
            elif owners.get(note.originator_id) == owner:
                open_now -= 1
            most = max(most, open_now)
        return most, opened
    finally:
        trading.close()


def append_newer(url: str, aggregate_id: UUID, kind: str) -> None:
    """Append to the aggregate (``kind``: ``bots:Bot``, ``deals:Deal``) an event only a
    newer version of the code knows."""
    trading = open_trading(url)
    try:
        version = max(e.originator_version
                      for e in trading.recorder.select_events(aggregate_id))
        trading.recorder.insert_events([StoredEvent(
            aggregate_id, version + 1, f"domain.{kind}.FromANewerVersion", b"{}")])
    finally:
        trading.close()


def broken_bot(url: str, candles, limits: dict) -> tuple[list, UUID]:
    """u1's three bots on one paper account (maxOpenDeals 1 first): one opens a deal, then
    that deal gets a newer version's event; the user's limits become ``limits``."""
    bots = seed(url, accounts=1, per_account=3, limits={"maxOpenDeals": 1})
    first = RiskWorker(url, "first")
    try:
        first.leases.tick()
        feed((first,), candles, range(1))
        assert open_deals(url) == (1, 1)
    finally:
        first.close()
    trading = open_trading(url)
    try:
        bad = next(b for b in bots if trading.get_bot(b).open_deal_id is not None)
        deal_id = trading.get_bot(bad).open_deal_id
        RiskLimits(trading).set_limits("u1", limits, actor="u1")
    finally:
        trading.close()
    append_newer(url, deal_id, "deals:Deal")
    return bots, bad


@pytest.mark.parametrize("limits", [{"maxOpenDeals": 2},
                                    {"maxOpenDeals": None, "maxExposureQuote": "500"}])
def test_an_unloadable_bot_is_failed_and_counted_its_users_other_bots_trade(
        candles, postgres_url, limits):
    """maxOpenDeals 2 (or maxExposureQuote 500: a deal commits at most 100 + 50 + 75):
    the broken bot's open deal counts as one (as its plan's 225 at most), so exactly one
    more deal opens among the other two bots; the broken bot is failed, named. Before: no
    worker held the user whole, so no deal opened at all (the worker's take of the user
    failed whole on the broken deal, its good bots let go with it, at every tick)."""
    bots, bad = broken_bot(postgres_url, candles, limits)
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        for worker in (one, two, one, two):
            worker.leases.tick()
        held = one.paper.bot_ids | two.paper.bot_ids
        assert held == set(bots) - {bad}
        feed((one, two), candles, range(1, 5))
        assert open_deals(postgres_url) == (2, 2)
        bot = one.trading.get_bot(bad)
        assert bot.status is BotStatus.ERROR
        assert bot.error_reason.startswith("BOT_NOT_LOADABLE: ")
        for worker in (one, two):  # later ticks: no new failure, the user still whole
            worker.leases.tick()
        assert len(one.trading.get_bot(bad).pending_events) == 0
        assert one.trading.get_bot(bad).version == bot.version
        feed((one, two), candles, range(5, 7))
        assert open_deals(postgres_url) == (2, 2)
    finally:
        one.close()
        two.close()


def test_one_process_starts_without_the_unloadable_bot_and_counts_it(candles, tmp_path):
    """One process (SQLite): its start used to fail whole on the broken deal (the bots'
    deals are loaded together), no bot of anyone traded. Now the broken bot is failed,
    named, its deal counted: maxOpenDeals 2, exactly one more deal opens."""
    url = f"sqlite:///{tmp_path / 'one.sqlite'}"
    bots = seed(url, accounts=1, per_account=3, limits={"maxOpenDeals": 1})
    runner = Runner(url, "first")
    feed((runner,), candles, range(1))
    runner.close()
    trading = open_trading(url)
    bad = next(b for b in bots if trading.get_bot(b).open_deal_id is not None)
    RiskLimits(trading).set_limits("u1", {"maxOpenDeals": 2}, actor="u1")
    deal_id = trading.get_bot(bad).open_deal_id
    trading.close()
    append_newer(url, deal_id, "deals:Deal")
    runner = Runner(url, "again")
    try:
        assert runner.paper.bot_ids == set(bots) - {bad}
        feed((runner,), candles, range(1, 5))
        assert open_deals(url) == (2, 2)
        assert runner.trading.get_bot(bad).error_reason.startswith("BOT_NOT_LOADABLE: ")
    finally:
        runner.close()


class Runner:
    """``serve`` on one process: the paper runner with the users' risk limits, started."""

    def __init__(self, url: str, name: str):
        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=SequentialIds(name))
        self.risk = RiskLimits(self.trading)
        self.paper = PaperTrading(self.trading, self.trading.ids, venue, risk=self.risk)
        self.paper.resume()

    def close(self) -> None:
        self.trading.close()


def test_a_bot_this_code_cannot_read_stops_no_one_else_and_its_user_passes_no_limit(
        candles, postgres_url):
    """The bot itself holds an event of a newer version. Before: every lease tick of every
    worker failed on it (the bots are loaded together), and no bot of anyone traded. Now
    it is left out, named; another user's bots trade; its own user's, whose maxOpenDeals
    counts a bot whose holdings are unknown, open nothing (the limit holds)."""
    bots = seed(postgres_url, accounts=1, per_account=2, limits={"maxOpenDeals": 2})
    others = seed(postgres_url, owner="u2", accounts=1, per_account=2,
                  limits={"maxDailyLossQuote": "1000"})
    append_newer(postgres_url, bots[0], "bots:Bot")
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        for worker in (one, two, one, two):
            worker.leases.tick()
        assert one.paper.bot_ids | two.paper.bot_ids == {bots[1], *others}
        feed((one, two), candles, range(3))
        assert open_deals(postgres_url, "u2") == (2, 2)
        assert open_deals(postgres_url, "u1") == (0, 0)
        trading = open_trading(postgres_url)
        try:
            said = [trading.mapper.to_domain_event(n) for n in read_log(trading)
                    if n.topic.endswith("Bot.RiskLimitReached")]
        finally:
            trading.close()
        assert [(e.originator_id, e.limit) for e in said] == [(bots[1], "maxOpenDeals")]
        assert "BOT_NOT_LOADABLE" in said[0].message
    finally:
        one.close()
        two.close()


def test_one_process_starts_without_a_bot_it_cannot_read(candles, tmp_path):
    """One process (SQLite): its start used to fail on the bot (loaded with the others);
    now the others trade, and its user's count limits open nothing."""
    url = f"sqlite:///{tmp_path / 'unread.sqlite'}"
    bots = seed(url, accounts=1, per_account=2, limits={"maxOpenDeals": 2})
    others = seed(url, owner="u2", accounts=1, per_account=2,
                  limits={"maxDailyLossQuote": "1000"})
    append_newer(url, bots[0], "bots:Bot")
    runner = Runner(url, "again")
    try:
        assert runner.paper.bot_ids == {bots[1], *others}
        feed((runner,), candles, range(3))
        assert (open_deals(url, "u1"), open_deals(url, "u2")) == ((0, 0), (2, 2))
    finally:
        runner.close()
