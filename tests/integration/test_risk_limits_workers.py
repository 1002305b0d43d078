"""A user's maxOpenDeals holds across engine workers: their bots sit on several paper
accounts, or are split between two workers for a while (a dead worker's bots adopted,
a lease let lapse). Two workers that each judged the limit from the bots they hold would
open, together, more deals than the user allowed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from application.replay import read_log
from application.risk_limits import RiskLimits
from domain.dca import DcaConfig
from tests.integration.test_risk_limits import BOT, EVENING, candles
from tests.integration.test_risk_pause_leased import RiskWorker, expire

__all__ = ["candles"]  # (the module's candles fixture)
LIMIT = 2  # the user's maxOpenDeals; they run four bots, each wants a deal at once


def seed(url: str, owner: str = "u1", accounts: int = 2, per_account: int = 2,
         limits: dict | None = None, config: dict | None = None) -> list:
    """``owner``'s bots on ``accounts`` paper accounts, all started, maxOpenDeals=LIMIT
    (or ``limits``), each with ``BOT`` (or ``config``)."""
    trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                           ids=SequentialIds(f"seed-{owner}"))
    bots = []
    for a in range(accounts):
        account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("10000"), actor=owner)
        for b in range(per_account):
            bot_id = trading.create_bot(owner_id=owner, name=f"bot {a}.{b}",
                                        config=DcaConfig.from_mapping(config or BOT),
                                        exchange_account_id=str(account))
            trading.start_bot(bot_id, actor=owner)
            bots.append(bot_id)
    RiskLimits(trading).set_limits(owner, limits or {"maxOpenDeals": LIMIT}, actor=owner)
    trading.close()
    return bots


def most_open_deals(url: str, owner: str = "u1") -> tuple[int, int]:
    """The most deals ``owner`` had open at once, walking the log in order, and how many
    they opened in all."""
    trading = open_trading(url)
    try:
        open_now = most = opened = 0
        for note in read_log(trading):
            kind = note.topic.rsplit(".", 1)[-1]
            if not note.topic.endswith(f"Deal.{kind}"):
                continue
            event = trading.mapper.to_domain_event(note)
            if kind == "Opened" and event.owner_id == owner:
                opened += 1
                open_now += 1
            elif kind in ("Closed", "Cancelled") and trading.get_deal(
                    event.originator_id).owner_id == owner:
                open_now -= 1
            most = max(most, open_now)
        return most, opened
    finally:
        trading.close()


def feed(workers, candles, minutes: range) -> None:
    for minute in minutes:
        o, h, low, c = candles.exact(minute)
        for worker in workers:
            worker.paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h, low, c,
                                   EVENING + timedelta(minutes=minute))


def test_a_users_accounts_are_traded_by_one_worker(candles, postgres_url):
    """Two paper accounts of one user: the second worker's share would be one account, but
    the user's bots stay together on one worker, and their four bots open exactly LIMIT
    deals between them."""
    bots = seed(postgres_url)
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        for worker in (one, two, one, two):
            worker.leases.tick()
        assert (one.paper.bot_ids, two.paper.bot_ids) == (set(bots), set())
        feed((one, two), candles, range(5))
        assert most_open_deals(postgres_url) == (LIMIT, LIMIT)
    finally:
        one.close()
        two.close()


def test_users_are_shared_whole_between_workers(candles, postgres_url):
    """Two users of two accounts each: one user a worker, the limit held for each."""
    bots, others = seed(postgres_url), seed(postgres_url, owner="u2")
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        for worker in (one, two, one, two):
            worker.leases.tick()
        held = sorted([sorted(one.paper.bot_ids), sorted(two.paper.bot_ids)])
        assert held == sorted([sorted(bots), sorted(others)])
        feed((one, two), candles, range(5))
        assert most_open_deals(postgres_url) == (LIMIT, LIMIT)
        assert most_open_deals(postgres_url, "u2") == (LIMIT, LIMIT)
    finally:
        one.close()
        two.close()


def split(url: str, limits: dict | None = None):
    """The user's four bots on one worker, three of their leases let lapse and adopted by a
    second worker at once (as a dead worker's are): the user's bots are split, and the
    first worker, which has not ticked since, believes it holds them all."""
    bots = seed(url, limits=limits)
    one = RiskWorker(url, "one")
    one.leases.tick()
    assert one.paper.bot_ids == set(bots)
    for bot_id in bots[1:]:
        expire(url, bot_id)
    two = RiskWorker(url, "two")
    two.leases.tick()  # adopts the three at once, whatever its share
    assert two.paper.bot_ids and two.paper.bot_ids <= set(bots[1:])
    return bots, one, two


def test_a_user_split_between_workers_never_passes_the_limit(candles, postgres_url):
    """While split, each worker holds part of the user's bots: neither may judge the limit
    alone, so neither opens a deal for them (the first worker's stale belief is refused by
    the leases it counted); together they never pass it."""
    bots, one, two = split(postgres_url)
    try:
        feed((one, two), candles, range(3))
        assert most_open_deals(postgres_url) == (0, 0)
        assert one.paper.bot_ids == {bots[0]}  # the three lost leases dropped
    finally:
        one.close()
        two.close()


def test_a_split_user_comes_together_on_one_worker_and_trades_to_the_limit(candles,
                                                                          postgres_url):
    """A later tick gives the user back to one worker (the one that holds fewer of their
    bots lets them go, the other takes them): then LIMIT deals open, no more."""
    bots, one, two = split(postgres_url)
    try:
        feed((one, two), candles, range(2))  # split: judged by neither
        one.leases.tick()  # holds one of the four: lets it go
        two.leases.tick()  # holds three: takes the fourth
        assert (one.paper.bot_ids, two.paper.bot_ids) == (set(), set(bots))
        one.leases.tick()
        assert one.paper.bot_ids == set()  # (a user whole elsewhere: not taken back)
        feed((one, two), candles, range(2, 5))
        assert most_open_deals(postgres_url) == (LIMIT, LIMIT)
    finally:
        one.close()
        two.close()


def test_a_worker_that_believes_it_holds_the_user_whole_is_fenced(candles, postgres_url):
    """A worker whose lease of one of the user's bots was taken by another after its last
    tick (it does not know yet) judges the limit with a stale figure: its deal is refused
    by the fence of every bot of the user it counted, not only the one that buys."""
    bots = seed(postgres_url)
    one = RiskWorker(postgres_url, "one")
    two = None
    try:
        one.leases.tick()
        assert one.paper.bot_ids == set(bots)
        expire(postgres_url, bots[0])
        two = RiskWorker(postgres_url, "two")
        two.leases.tick()  # adopts bots[0]; one has not ticked since
        feed((two, one), candles, range(3))
        most, _ = most_open_deals(postgres_url)
        assert most <= LIMIT
    finally:
        one.close()
        if two is not None:
            two.close()


def test_the_exposure_limit_holds_across_workers_too(candles, postgres_url):
    """maxExposureQuote 250: one deal commits 225 (a base order of 100, safety orders of 50
    and 75 resting). Split, no deal opens; together on one worker, exactly one."""
    bots, one, two = split(postgres_url, {"maxExposureQuote": "250"})
    try:
        feed((one, two), candles, range(2))
        assert most_open_deals(postgres_url) == (0, 0)
        one.leases.tick()
        two.leases.tick()
        assert two.paper.bot_ids == set(bots)
        feed((one, two), candles, range(2, 5))
        assert most_open_deals(postgres_url) == (1, 1)
        assert two.risk.view("u1").exposure.committed_quote <= Decimal("250")
    finally:
        one.close()
        two.close()


def test_bots_started_at_once_on_two_workers_wait_for_a_look(candles, postgres_url):
    """Two stopped bots of one user (maxOpenDeals 1), started at the same moment by commands
    on two workers, each claiming its bot at once: neither worker knows the other's bot
    yet. Neither opens a deal until a tick has looked at the log since its claim; then the
    user comes together on one worker and opens one deal, no more."""
    trading = open_trading(postgres_url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                           ids=SequentialIds("seed-u1"))
    bots = []
    for n in range(2):
        account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        bots.append(trading.create_bot(owner_id="u1", name=f"bot {n}",
                                       config=DcaConfig.from_mapping(BOT),
                                       exchange_account_id=str(account)))
    RiskLimits(trading).set_limits("u1", {"maxOpenDeals": 1}, actor="u1")
    trading.close()
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        for worker in (one, two):
            worker.leases.tick()  # nothing runs yet
        for worker, bot_id in zip((one, two), bots, strict=True):
            worker.trading.start_bot(bot_id, actor="u1")
            worker.paper.follow(bot_id)  # the command's worker claims the bot
        assert (one.paper.bot_ids, two.paper.bot_ids) == ({bots[0]}, {bots[1]})
        feed((one, two), candles, range(2))
        assert most_open_deals(postgres_url) == (0, 0)
        for worker in (one, two, one, two):
            worker.leases.tick()
        assert sorted(map(len, (one.paper.bot_ids, two.paper.bot_ids))) == [0, 2]
        feed((one, two), candles, range(2, 4))
        assert most_open_deals(postgres_url) == (1, 1)
    finally:
        one.close()
        two.close()
