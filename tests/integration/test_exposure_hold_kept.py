"""A user's exposure hold kept by another process (a position whose live exchange does not
answer) defers that user's bots alone: every other user's bots of the candle trade on it,
a user sharing the held user's lock bucket included, and the held user's bots trade at the
first candle after the hold is let go. Before, the worker's one append of the candle
waited for the hold and was refused four times: the candle was skipped for every bot."""

from __future__ import annotations

import logging
from contextlib import ExitStack

import pytest

from adapters.event_store.exposure_stamps import lock_keys
from tests.integration.test_engine_leases import client_ids, version_gaps
from tests.integration.test_risk_limits import BOT, candles
from tests.integration.test_risk_limits_workers import feed, seed
from tests.integration.test_risk_pause_leased import RiskWorker
from tests.integration.test_risk_positions_workers import ApiProcess

__all__ = ["candles"]  # (the module's candles fixture)
LIMITS = {"maxExposureQuote": "1000"}  # stamped users; a deal commits 225, two fit
HELD = "u1"


def bucket_mate(owner: str) -> str:
    """Another user whose hold shares ``owner``'s lock bucket."""
    bucket = lock_keys("any", owner)[1]
    return next(name for n in range(10_000)
                if lock_keys("any", name := f"mate-{n}")[1] == bucket)


def deals_of(worker: RiskWorker, bots: list) -> list:
    return [worker.trading.get_bot(bot_id).open_deal_id for bot_id in bots]


def test_a_kept_hold_defers_its_users_bots_and_no_one_elses(candles, postgres_url, caplog):
    caplog.set_level(logging.INFO, "tradetape")
    mate = bucket_mate(HELD)
    bots = {owner: seed(postgres_url, owner, accounts=1, per_account=2, limits=LIMITS,
                        config=BOT) for owner in (HELD, mate, "u3")}
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    try:
        worker.leases.tick()
        assert worker.paper.bot_ids == {b for owned in bots.values() for b in owned}
        with api.risk.holds.hold(HELD):  # kept on the api process's own connection
            feed((worker,), candles, range(2))
            assert deals_of(worker, bots[HELD]) == [None, None]
            for owner in (mate, "u3"):  # traded on the first candle, held or not
                assert None not in deals_of(worker, bots[owner]), owner
            assert worker.risk.holds.deferred == 4  # two bots, two candles
        feed((worker,), candles, range(2, 3))
        assert None not in deals_of(worker, bots[HELD])
    finally:
        worker.close()
        api.close()
    said = [(r.name, r.getMessage()) for r in caplog.records]
    # one wait and refusal in all (the second candle asked without waiting), said once
    assert [name for name, line in said if "EXPOSURE_HELD" in line] == [
        "tradetape.risk", "tradetape.paper"]
    assert not [line for _, line in said if "CANDLE_SKIPPED" in line]
    assert max(client_ids(postgres_url).values()) == 1  # no order placed twice
    assert version_gaps(postgres_url) == []


class LetGoAtAsk:
    """The worker's stamps (``ExposureStamps``), letting the kept hold go just before the
    worker asks whether it is let go for the ``at``-th time."""

    def __init__(self, stamps, hold: ExitStack, at: int):
        self.stamps, self.hold, self.at, self.asked = stamps, hold, at, 0

    def held(self, owners: list[str]) -> set[str]:
        self.asked += 1
        if self.asked == self.at:
            self.hold.close()
        return self.stamps.held(owners)

    def __getattr__(self, name: str):
        return getattr(self.stamps, name)


@pytest.mark.parametrize("at", [1, 2])
def test_a_hold_let_go_after_the_refusal_trades_on_the_same_candle(candles, postgres_url,
                                                                   at):
    """Let go before the candle is stepped again (``at`` 1), or after the other users'
    bots were appended without the held user's (2: a round for theirs alone)."""
    bots = {owner: seed(postgres_url, owner, accounts=1, per_account=2, limits=LIMITS,
                        config=BOT) for owner in (HELD, "u3")}
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    holds = worker.risk.holds
    try:
        with ExitStack() as hold:
            hold.enter_context(api.risk.holds.hold(HELD))
            holds.stamps = LetGoAtAsk(holds.stamps, hold, at)
            worker.leases.tick()
            feed((worker,), candles, range(1))
            assert holds.stamps.asked == at
        for owner in (HELD, "u3"):
            assert None not in deals_of(worker, bots[owner]), owner
        assert holds.deferred == 0
    finally:
        worker.close()
        api.close()
    assert max(client_ids(postgres_url).values()) == 1
    assert version_gaps(postgres_url) == []


def deal_shapes(worker: RiskWorker, bots: list) -> list:
    """What the market made of each bot's open deal: its entry, what it holds and paid,
    how many safety orders filled (not when it was recorded)."""
    deals = [worker.trading.get_deal(deal_id) for deal_id in deals_of(worker, bots)]
    return [(d.entry_price, d.units, d.cost, d.buy_fees, d.safety_orders_used) for d in deals]


def test_a_deferred_users_bots_take_the_candles_they_were_left_out_of(candles, postgres_url):
    """Kept for six candles, then let go: the held user's bots are stepped on those six
    before the seventh, so their deals are what the market made of them (the same as an
    identical user's never held), not deals opened at the first candle after the hold.
    Before, those candles were lost for them: entry at candle 6's close."""
    bots = {owner: seed(postgres_url, owner, accounts=1, per_account=2, limits=LIMITS,
                        config=BOT) for owner in (HELD, "u3")}
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    try:
        worker.leases.tick()
        with api.risk.holds.hold(HELD):
            feed((worker,), candles, range(6))
            assert deals_of(worker, bots[HELD]) == [None, None]
        feed((worker,), candles, range(6, 8))
        held, free = deal_shapes(worker, bots[HELD]), deal_shapes(worker, bots["u3"])
        first_close = candles.exact(0)[3]
        assert [shape[0] for shape in free] == [first_close, first_close]
        assert held == free
        assert worker.paper._owed == {}
    finally:
        worker.close()
        api.close()
    assert max(client_ids(postgres_url).values()) == 1
    assert version_gaps(postgres_url) == []


def test_owed_candles_are_dropped_when_the_market_is_followed_again_from_the_log(
        candles, postgres_url, caplog):
    """A held user's market followed again from the log meanwhile (what its lease lost and
    taken again, or its deal moved on by another writer, do) may have had those candles
    stepped elsewhere: they are dropped, in one line, never walked twice; the bots trade
    from the next candle on, as before owed candles."""
    caplog.set_level(logging.WARNING, "tradetape")
    bots = seed(postgres_url, HELD, accounts=1, per_account=2, limits=LIMITS, config=BOT)
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    try:
        worker.leases.tick()
        with api.risk.holds.hold(HELD):
            feed((worker,), candles, range(3))
            worker.paper._rebuild_markets(set(bots))
        feed((worker,), candles, range(3, 4))
        entries = [shape[0] for shape in deal_shapes(worker, bots)]
        assert entries == [candles.exact(3)[3]] * 2
        assert worker.paper._owed == {}
    finally:
        worker.close()
        api.close()
    dropped = [r.getMessage() for r in caplog.records if "OWED_CANDLES_DROPPED" in
               r.getMessage()]
    assert len(dropped) == 1 and "3 candles" in dropped[0]
    assert max(client_ids(postgres_url).values()) == 1
    assert version_gaps(postgres_url) == []
