"""An engine append waits for a user's exposure hold until the hold is ``WAIT_SECONDS``
old, not for ``WAIT_SECONDS`` from when the append met it: a hold already kept that long
(stuck: a live exchange that does not answer) is refused at once, and the held user's bots
are deferred without the worker's candle waiting. Before, the first append that met a
stuck hold always waited the whole bound (5 s of every bot's candle)."""

from __future__ import annotations

import logging
import time

import pytest

from adapters.event_store import exposure_stamps
from tests.integration.test_engine_leases import client_ids, version_gaps
from tests.integration.test_exposure_hold_kept import HELD, LIMITS, deals_of
from tests.integration.test_risk_limits import BOT, candles
from tests.integration.test_risk_limits_workers import feed, seed
from tests.integration.test_risk_pause_leased import RiskWorker
from tests.integration.test_risk_positions_workers import ApiProcess

__all__ = ["candles"]  # (the module's candles fixture)
WAIT = 4  # the bound, shorter than the shipped 5 s (the test sleeps past it)


@pytest.mark.parametrize("kept, waits_at_most", [(WAIT + 0.3, 1.5), (WAIT - 1.5, 3.2)])
def test_a_hold_is_waited_for_only_until_it_is_wait_seconds_old(
        candles, postgres_url, caplog, monkeypatch, kept, waits_at_most):
    """``kept``: how long the hold was kept before the candle; the candle's step, append
    and refusal included, it ends within ``waits_at_most`` seconds (it waited ``WAIT``
    before, from its append's first look)."""
    monkeypatch.setattr(exposure_stamps, "WAIT_SECONDS", WAIT)
    caplog.set_level(logging.INFO, "tradetape")
    bots = {owner: seed(postgres_url, owner, accounts=1, per_account=2, limits=LIMITS,
                        config=BOT) for owner in (HELD, "u3")}
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    try:
        worker.leases.tick()
        with api.risk.holds.hold(HELD):  # kept on the api process's own connection
            time.sleep(kept)
            began = time.monotonic()
            feed((worker,), candles, range(1))
            took = time.monotonic() - began
            assert deals_of(worker, bots[HELD]) == [None, None]  # deferred
            assert None not in deals_of(worker, bots["u3"])  # traded on
            assert worker.risk.holds.deferred == 2
        assert took < waits_at_most, took
        if kept < WAIT:  # a hold not stuck yet is waited for until it is
            assert took > WAIT - kept - 0.3, took
        feed((worker,), candles, range(1, 2))
        assert None not in deals_of(worker, bots[HELD])  # let go: traded at the next
    finally:
        worker.close()
        api.close()
    said = [r.getMessage() for r in caplog.records]
    assert len([line for line in said if "EXPOSURE_HELD" in line]) == 2  # refused, kept
    assert not [line for line in said if "CANDLE_SKIPPED" in line]
    assert max(client_ids(postgres_url).values()) == 1  # no order placed twice
    assert version_gaps(postgres_url) == []
