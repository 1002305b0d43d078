"""Loading an aggregate again reads only the events it has not seen (the library's cache,
brought up to date on every load): a running bot, reloaded at every candle, costs the same
on its thousandth deal as on its first, and still sees what another process wrote."""

from __future__ import annotations

import pytest

from domain.bots import BotStatus
from tests.integration.conftest import CONFIG


@pytest.fixture
def decoded(monkeypatch):
    """How many stored events are turned back into domain events."""
    from eventsourcing.persistence import Mapper

    count = [0]
    original = Mapper.to_domain_event

    def counting(self, stored):
        count[0] += 1
        return original(self, stored)

    monkeypatch.setattr(Mapper, "to_domain_event", counting)
    return count


def test_a_reload_decodes_only_newer_events_and_sees_another_writers(
        persistent_store_url, trading, decoded):
    app = trading(persistent_store_url, seed="cache")
    bot_id = app.create_bot(owner_id="alice", name="busy", config=CONFIG,
                            exchange_account_id="acc-1")
    for _ in range(20):
        app.start_bot(bot_id)
        app.pause_bot(bot_id)
    app.get_bot(bot_id)  # 41 events, now kept

    decoded[0] = 0
    assert app.get_bot(bot_id).version == 41
    assert decoded[0] == 0

    other = trading(persistent_store_url, seed="other")  # another process, same store
    other.start_bot(bot_id)
    decoded[0] = 0
    reloaded = app.get_bot(bot_id)
    assert (reloaded.version, reloaded.status, decoded[0]) == (42, BotStatus.RUNNING, 1)


def test_each_load_hands_out_its_own_copy(store_url, trading):
    app = trading(store_url)
    bot_id = app.create_bot(owner_id="alice", name="b", config=CONFIG,
                            exchange_account_id="acc-1")
    first = app.get_bot(bot_id)
    first.start(app.cause("alice"))  # decided but never saved

    assert app.get_bot(bot_id).status is BotStatus.CREATED


def test_loading_rebuilds_each_aggregate_as_the_library_does(persistent_store_url, trading):
    """Trading.load folds events without the library's per-event Protocol check; what it
    builds is what the library's own projector builds, for every aggregate of a backtest."""
    from eventsourcing.application import project_aggregate

    from application.replay import read_log
    from tests.projection_stubs import backtest, candle_rows, saw_levels

    app = trading(persistent_store_url, seed="projector")
    backtest(app, candle_rows(saw_levels(4)), "projector")
    ids = {n.originator_id for n in read_log(app)}
    assert len(ids) > 20
    for aggregate_id in ids:
        ours = app.load(aggregate_id, object)
        theirs = app.repository._reconstruct_aggregate(aggregate_id, None, project_aggregate)
        assert type(ours) is type(theirs) and ours.__dict__ == theirs.__dict__
