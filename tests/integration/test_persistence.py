"""What the event store gives back: exact values, old event shapes, the same bytes for the same
run, nothing for a refused command, and one winner when two writers race."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.bots import Bot, BotMode, BotStatus, LifecycleStage
from domain.dca import DcaConfig
from domain.deals import CloseReason, DealStatus
from domain.errors import ConcurrencyConflictError, InvalidTransitionError
from domain.orders import Order, OrderPurpose, OrderSide, OrderStatus, OrderType
from domain.recording import ENGINE
from tests.integration.conftest import (
    CONFIG,
    EDITED,
    SCRIPT_EVENTS,
    T0,
    exact,
    reopen,
    run_script,
    state_of,
    stored_rows,
)

LEGACY_BOT = UUID("5f0c3a52-7d1e-4d1b-9d8e-2f8b1c0a9e01")


# --- round trip -----------------------------------------------------------------------------


def test_every_value_comes_back_exactly_from_a_new_application(store_url, trading):
    writer = trading(store_url)
    script = run_script(writer)
    reader = reopen(trading, writer, store_url)

    bot = reader.get_bot(script.bot_id)
    deal = reader.get_deal(script.deal_id)
    buy = reader.load(script.buy_id, Order)

    # Every event the script recorded comes back field for field, in type and scale.
    stored = {
        (event.originator_id, event.originator_version): event
        for aggregate_id in (script.bot_id, script.deal_id, script.buy_id)
        for event in reader.events.get(aggregate_id)
    }
    assert len(script.recorded) == 12
    for original in script.recorded:
        again = stored[(original.originator_id, original.originator_version)]
        assert type(again) is type(original)
        assert exact(vars(again)) == exact(vars(original))
    # And the state rebuilt from them is the state the script's objects had in memory.
    for again in (bot, deal, buy):
        assert exact(state_of(again)) == exact(state_of(script.aggregates[again.id]))

    # What a user reads off the screen: scales, members, aware UTC times, ids.
    assert exact(bot.config) == exact(EDITED)
    assert str(bot.config.safety_volume_scale) == "1.2300"
    assert str(bot.config.stop_loss_pct) == "10.000"
    assert bot.mode is BotMode.PAPER
    assert bot.stage is LifecycleStage.PAPER_TRAINING
    assert bot.status is BotStatus.RUNNING
    assert (bot.config_version, bot.deals_opened, bot.deals_finished) == (2, 1, 1)
    assert bot.paper_started_at == T0 + timedelta(seconds=1)  # the first start
    assert deal.status is DealStatus.CLOSED
    assert deal.close_reason is CloseReason.TAKE_PROFIT
    assert isinstance(deal.bot_id, UUID) and deal.bot_id == script.bot_id
    assert str(deal.take_profit_pct) == "2.50"
    assert str(deal.units) == "0"  # the exit sold everything
    assert str(deal.buy_fees) == "0.120"
    cost = Decimal("40000.10") * Decimal("0.00250000") + Decimal("39400.00") * Decimal("0.00050800")
    proceeds = Decimal("41000.00") * Decimal("0.00300800")
    assert str(deal.realized_pnl) == str(proceeds - cost - Decimal("0.120") - Decimal("0.12330"))
    assert buy.side is OrderSide.BUY and buy.type is OrderType.LIMIT
    assert buy.purpose is OrderPurpose.BASE
    assert buy.status is OrderStatus.FILLED
    assert (str(buy.price), str(buy.amount), str(buy.filled)) == (
        "40000.10", "0.00250000", "0.00250000",
    )
    assert buy.trade_ids == ["t-1", "t-2"]
    for moment in (deal.opened_at, deal.closed_at, bot.modified_on, buy.created_on):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def test_every_stored_event_names_its_actor_and_correlation_id(store_url, trading):
    app = trading(store_url)
    script = run_script(app)
    rows = stored_rows(app)
    assert len(rows) == SCRIPT_EVENTS
    for topic, _, _, state in rows:
        data = json.loads(state)
        assert data["actor"], topic
        assert data["correlation_id"], topic
    bot_events = list(app.events.get(script.bot_id))
    assert [e.actor for e in bot_events[:5]] == ["alice"] * 5
    assert [e.actor for e in bot_events[5:]] == [ENGINE, ENGINE]
    # One engine step, one correlation id across the aggregates it changed.
    opened = next(iter(app.events.get(script.deal_id)))
    submitted = next(iter(app.events.get(script.buy_id)))
    assert opened.correlation_id == submitted.correlation_id == bot_events[5].correlation_id
    assert len({e.correlation_id for e in bot_events}) == 7


# --- upcasting ------------------------------------------------------------------------------


def test_a_v1_bot_created_event_reads_back_as_a_paper_bot(store_url, trading):
    app = trading(store_url)
    v1_state = {
        "timestamp": T0 - timedelta(days=400),
        "originator_topic": get_topic(Bot),
        "actor": "alice",
        "correlation_id": "import-2023",
        "name": "legacy",
        "owner_id": "alice",
        "exchange_account_id": "acc-1",
        "config": CONFIG,
    }
    payload = app.mapper.transcoder.encode(v1_state)
    assert b'"mode"' not in payload and b"class_version" not in payload
    app.recorder.insert_events(
        [StoredEvent(LEGACY_BOT, 1, get_topic(Bot.Created), payload)]
    )

    reader = reopen(trading, app, store_url)
    bot = reader.repository.get(LEGACY_BOT)
    assert bot.mode is BotMode.PAPER
    assert bot.stage is LifecycleStage.PAPER_TRAINING
    assert bot.status is BotStatus.CREATED
    assert exact(bot.config) == exact(CONFIG)
    # The old bot takes new commands; its old event stays as it was written.
    assert reader.start_bot(LEGACY_BOT).paper_started_at == T0
    assert reader.get_bot(LEGACY_BOT).status is BotStatus.RUNNING
    assert stored_rows(reader)[0][3] == payload


# --- determinism ----------------------------------------------------------------------------


def test_the_same_script_stores_the_same_bytes(store_url, another_store_url, trading):
    first = trading(store_url, start=T0, seed="replay")
    run_script(first)
    second = trading(another_store_url, start=T0, seed="replay")
    run_script(second)

    rows = stored_rows(first)
    assert len(rows) == SCRIPT_EVENTS
    assert rows == stored_rows(second)
    # The times are the scripted clock's, not the wall clock's.
    assert json.loads(rows[0][3])["timestamp"]["_data_"] == T0.isoformat()


# --- refused commands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        lambda app, bot_id: app.start_bot(bot_id),
        lambda app, bot_id: app.pause_bot(bot_id),
        lambda app, bot_id: app.edit_bot_config(bot_id, EDITED),
    ],
    ids=["start", "pause", "edit"],
)
def test_a_refused_command_writes_nothing(store_url, trading, command):
    app = trading(store_url)
    bot_id = app.create_bot(
        owner_id="alice", name="done", config=CONFIG, exchange_account_id="acc-1"
    )
    app.stop_bot(bot_id)
    before = stored_rows(app)

    with pytest.raises(InvalidTransitionError) as refused:
        command(app, bot_id)

    assert refused.value.code == "BOT_STOPPED"
    assert stored_rows(app) == before
    reader = reopen(trading, app, store_url)
    assert reader.get_bot(bot_id).status is BotStatus.STOPPED


# --- concurrency (PostgreSQL: two applications, two connection pools) -----------------------


def _racing_bot(postgres_url, trading) -> tuple[Any, Any, UUID]:
    first, second = trading(postgres_url, seed="first"), trading(postgres_url, seed="second")
    bot_id = first.create_bot(
        owner_id="alice", name="raced", config=CONFIG, exchange_account_id="acc-1"
    )
    first.start_bot(bot_id, actor="alice")
    return first, second, bot_id


def _history(app, bot_id: UUID) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.actor) for e in app.events.get(bot_id)]


def _commit_between_load_and_save(monkeypatch, app, other_writes: list) -> list[int]:
    """Before each of ``app``'s next loads returns, the other writer commits its next change:
    the aggregate ``app`` decides on is stale by the time it saves."""
    real_load, loads = app.load, []

    def load(aggregate_id, kind):
        aggregate = real_load(aggregate_id, kind)
        loads.append(aggregate.version)
        if other_writes:
            other_writes.pop(0)()
        return aggregate

    monkeypatch.setattr(app, "load", load)
    return loads


def test_two_writers_first_save_wins_the_second_gets_a_conflict(postgres_url, trading):
    first, second, bot_id = _racing_bot(postgres_url, trading)
    mine, theirs = first.get_bot(bot_id), second.get_bot(bot_id)
    mine.pause(first.cause("alice"))
    theirs.stop(second.cause("bob"))

    first.save_all(mine)
    with pytest.raises(ConcurrencyConflictError) as lost:
        second.save_all(theirs)

    assert lost.value.code == "CONCURRENT_MODIFICATION"
    assert _history(second, bot_id) == [("Created", "alice"), ("Started", "alice"),
                                        ("Paused", "alice")]
    assert second.get_bot(bot_id).status is BotStatus.PAUSED


def test_a_lifecycle_command_that_lost_the_race_is_not_retried(postgres_url, trading, monkeypatch):
    first, second, bot_id = _racing_bot(postgres_url, trading)
    loads = _commit_between_load_and_save(
        monkeypatch, first, [lambda: second.stop_bot(bot_id, actor="bob")]
    )

    with pytest.raises(ConcurrencyConflictError):
        first.pause_bot(bot_id, actor="alice")

    assert loads == [2]
    assert _history(second, bot_id)[-1] == ("Stopped", "bob")
    assert second.get_bot(bot_id).status is BotStatus.STOPPED


def test_a_config_edit_that_lost_the_race_is_decided_again_and_saved(
    postgres_url, trading, monkeypatch
):
    first, second, bot_id = _racing_bot(postgres_url, trading)
    theirs = DcaConfig(**{**vars(EDITED), "take_profit_pct": Decimal("3.0")})
    loads = _commit_between_load_and_save(
        monkeypatch, first, [lambda: second.edit_bot_config(bot_id, theirs, actor="bob")]
    )

    bot = first.edit_bot_config(bot_id, EDITED, actor="alice")

    assert loads == [2, 3]  # decided on version 2, lost, decided again on bob's version 3
    assert _history(second, bot_id)[2:] == [("ConfigEdited", "bob"), ("ConfigEdited", "alice")]
    stored = second.get_bot(bot_id)
    assert exact(stored.config) == exact(EDITED) == exact(bot.config)
    assert stored.config_version == 3


def test_a_config_edit_is_retried_only_once(postgres_url, trading, monkeypatch):
    first, second, bot_id = _racing_bot(postgres_url, trading)
    configs = [
        DcaConfig(**{**vars(EDITED), "take_profit_pct": Decimal(pct)})
        for pct in ("3.0", "4.0")
    ]
    loads = _commit_between_load_and_save(
        monkeypatch,
        first,
        [lambda c=c: second.edit_bot_config(bot_id, c, actor="bob") for c in configs],
    )

    with pytest.raises(ConcurrencyConflictError):
        first.edit_bot_config(bot_id, EDITED, actor="alice")

    assert loads == [2, 3]
    assert [actor for _, actor in _history(second, bot_id)[2:]] == ["bob", "bob"]
