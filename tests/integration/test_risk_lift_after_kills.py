"""A new day's lift of the daily loss limit, left half done by engine workers that died: the
worker that lifted the user's halt resumed the bot it held and left the paused bot another
worker trades to that worker, and both died (killed, their leases expired) before that
worker's next step. The worker that holds the bot next, started since (a supervisor's
restart: it never read the lift in the log as it happened), resumes it at its first step;
else the bot stayed paused for good, its owner's halt long lifted."""

from __future__ import annotations

import psycopg

from application.settings import _connect_kwargs, parse_database_url
from domain.bots import BotStatus
from tests.integration.test_risk_limits import candles
from tests.integration.test_risk_pause_leased import (
    RiskWorker,
    expire,
    paused_before_midnight,
    read_events,
)

__all__ = ["candles"]  # (the candles fixture)


def die(url: str, *workers: RiskWorker) -> None:
    """``workers`` dead as the others see them: their worker rows and leases expired, as
    when their processes were killed (the session locks of these in-process workers stay
    held: the rows decide)."""
    database = parse_database_url(url)
    schema = database.env["POSTGRES_SCHEMA"]
    names = [w.leases.worker for w in workers]
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".engine_workers SET expires_at = now() '
                     "WHERE worker = ANY(%s)", (names,))
        conn.execute(f'UPDATE "{schema}".engine_leases SET expires_at = now() '
                     "WHERE worker = ANY(%s)", (names,))


def start_worker(url: str, name: str) -> RiskWorker:
    """An engine worker as ``serve`` starts it (``Runtime._start_trading``): the halts in
    the log looked at, then its first take."""
    worker = RiskWorker(url, name)
    worker.risk.resume()
    worker.leases.tick()
    return worker


def test_a_lift_left_half_done_by_two_dead_workers_is_finished_by_the_next_holder(
        candles, postgres_url):
    loser, holder, one, candle = paused_before_midnight(postgres_url, candles)
    two = three = None
    try:
        expire(postgres_url, holder)
        two = RiskWorker(postgres_url, "two")
        two.leases.tick()  # takes the paused holder (its deal open)
        one.leases.tick()
        for worker in (one, two):
            candle(worker, 59)
        candle(one, 60)  # 00:00: one lifts the halt, resumes the loser, leaves the holder
        trading = one.trading
        assert one.risk.view("u1").paused_until is None
        assert trading.get_bot(holder).status is BotStatus.PAUSED

        die(postgres_url, one, two)  # both gone before two's next step
        three = start_worker(postgres_url, "three")
        assert three.leases.holds(holder) and three.leases.holds(loser)
        candle(three, 61)
        assert trading.get_bot(holder).status is BotStatus.RUNNING
        assert trading.get_bot(loser).status is BotStatus.RUNNING
        assert sorted(e.originator_id for e in read_events(trading, "Bot.RiskResumed")) \
            == sorted([loser, holder])
        assert len(read_events(trading, "UserRisk.DailyLossLifted")) == 1
        candle(three, 62)
        assert three.risk.due(three.trading.clock.now()) == []  # nothing left to finish
    finally:
        for worker in (one, two, three):
            if worker is not None:
                worker.close()


def test_a_left_paused_bot_no_worker_holds_is_taken_and_resumed_by_a_worker_started_since(
        candles, postgres_url):
    """The bot left paused needs no engine (paused, no deal: no worker leases it once its
    holder let it go): the worker started since takes it at its first step and resumes it."""
    loser, holder, one, candle = paused_before_midnight(postgres_url, candles)
    two = three = None
    try:
        candle(one, 59)
        expire(postgres_url, loser)
        two = RiskWorker(postgres_url, "two")
        assert two.leases.claim(loser)  # (a command on two took it, just before midnight)
        one.leases.tick()  # sees the loser gone, keeps the holder (its deal open)
        candle(one, 60)  # 00:00: the halt lifted, the holder resumed, the loser left to two
        trading = one.trading
        assert trading.get_bot(holder).status is BotStatus.RUNNING
        assert trading.get_bot(loser).status is BotStatus.PAUSED
        two.leases.tick()  # lets the loser go (paused without a deal: nothing to trade)
        assert not two.leases.holds(loser)
        die(postgres_url, one, two)
        three = start_worker(postgres_url, "three")
        assert three.leases.holds(holder) and not three.leases.holds(loser)
        candle(three, 61)
        assert trading.get_bot(loser).status is BotStatus.RUNNING
        assert three.leases.holds(loser) and loser in three.paper.bot_ids
        assert len(read_events(trading, "UserRisk.DailyLossLifted")) == 1
    finally:
        for worker in (one, two, three):
            if worker is not None:
                worker.close()
