"""A bot's lifecycle, its configuration history and its deal bookkeeping."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from domain.bots import Bot, BotMode, BotStatus, LifecycleStage
from domain.errors import DomainError, InvalidTransitionError
from tests.stubs import (
    DEAL_ID,
    OTHER_DEAL_ID,
    a_bot,
    a_cause,
    a_config,
    at,
    replay,
    state_of,
)

# Which command each status allows, written here apart from the code: a change to the
# lifecycle must change this table on purpose.
ALLOWED: dict[str, set[str]] = {
    "start": {"created", "paused"},
    "pause": {"running"},
    "stop": {"created", "running", "paused", "error"},
    "fail": {"created", "running", "paused"},
    "reset_error": {"error"},
    "edit_config": {"created", "running", "paused", "error"},
}
OUTCOME = {
    "start": "running",
    "pause": "paused",
    "stop": "stopped",
    "fail": "error",
    "edit_config": None,  # the status stays as it was
}
COMMANDS: dict[str, Callable[[Bot], None]] = {
    "start": lambda bot: bot.start(a_cause(50)),
    "pause": lambda bot: bot.pause(a_cause(50)),
    "stop": lambda bot: bot.stop(a_cause(50)),
    "fail": lambda bot: bot.fail(a_cause(50), "exchange said: invalid API key"),
    "reset_error": lambda bot: bot.reset_error(a_cause(50)),
    "edit_config": lambda bot: bot.edit_config(a_cause(50), a_config(take_profit_pct=Decimal(3))),
}


def bot_in(status: str) -> Bot:
    """A bot brought to ``status`` by the commands a user would give."""
    bot = a_bot()
    steps = {
        "created": [],
        "running": [bot.start],
        "paused": [bot.start, bot.pause],
        "stopped": [bot.stop],
        "error": [bot.start, lambda c: bot.fail(c, "boom")],
    }[status]
    for minute, step in enumerate(steps, start=1):
        step(a_cause(minute))
    assert bot.status is BotStatus(status)
    return bot


# --- lifecycle ------------------------------------------------------------------------------


def test_new_bot_is_created_in_paper_training_with_no_deals() -> None:
    bot = a_bot(name="  BTC dip buyer  ")

    assert (bot.status, bot.mode, bot.stage) == (
        BotStatus.CREATED,
        BotMode.PAPER,
        LifecycleStage.PAPER_TRAINING,
    )
    assert bot.name == "BTC dip buyer"
    assert (bot.deals_opened, bot.deals_finished, bot.open_deal_id) == (0, 0, None)
    assert bot.created_on == at(0)


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_bot_with_empty_or_overlong_name_is_refused(name: str) -> None:
    with pytest.raises(DomainError) as caught:
        a_bot(name=name)

    assert (caught.value.code, caught.value.field) == ("INVALID_BOT_NAME", "name")


def test_bot_runs_pauses_resumes_and_stops() -> None:
    bot = a_bot()
    seen = []
    for command in (bot.start, bot.pause, bot.start, bot.stop):
        command(a_cause(len(seen) + 1))
        seen.append(bot.status)

    assert seen == [BotStatus.RUNNING, BotStatus.PAUSED, BotStatus.RUNNING, BotStatus.STOPPED]
    assert [type(e).__name__ for e in bot.pending_events] == [
        "Created",
        "Started",
        "Paused",
        "Started",
        "Stopped",
    ]


@pytest.mark.parametrize("status", ["created", "running", "paused", "stopped", "error"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bot_command_in_each_status_follows_the_lifecycle(status: str, command: str) -> None:
    bot = bot_in(status)
    recorded = len(bot.pending_events)

    if status in ALLOWED[command]:
        COMMANDS[command](bot)
        assert len(bot.pending_events) == recorded + 1
        if command == "reset_error":
            assert bot.status is BotStatus.PAUSED  # it failed while running
        else:
            assert bot.status is BotStatus(OUTCOME[command] or status)
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            COMMANDS[command](bot)
        assert caught.value.code == f"BOT_{status.upper()}"
        assert len(bot.pending_events) == recorded
        assert bot.status is BotStatus(status)


def test_stopped_bot_start_raises_bot_stopped_and_records_nothing() -> None:
    bot = bot_in("stopped")
    before = state_of(bot)

    with pytest.raises(InvalidTransitionError) as caught:
        bot.start(a_cause(9))

    assert caught.value.code == "BOT_STOPPED"
    assert len(bot.pending_events) == 2
    assert state_of(bot) == before


# --- errors ---------------------------------------------------------------------------------


def test_failing_bot_keeps_the_reason() -> None:
    bot = bot_in("running")

    bot.fail(a_cause(5), "exchange said: invalid API key")

    assert bot.status is BotStatus.ERROR
    assert bot.error_reason == "exchange said: invalid API key"


@pytest.mark.parametrize(
    ("failed_while", "comes_back"),
    [("running", "paused"), ("paused", "paused"), ("created", "created")],
)
def test_reset_error_brings_the_bot_back_without_running_it(
    failed_while: str, comes_back: str
) -> None:
    bot = bot_in(failed_while)
    bot.fail(a_cause(5), "boom")

    bot.reset_error(a_cause(6))

    assert bot.status is BotStatus(comes_back)
    assert (bot.error_reason, bot.status_before_error) == (None, None)


# --- configuration history ------------------------------------------------------------------


def test_config_edit_records_an_event_and_a_new_version() -> None:
    bot = a_bot()
    wider = a_config(price_deviation_pct=Decimal(2))

    bot.edit_config(a_cause(1), wider)

    assert (bot.config, bot.config_version) == (wider, 2)
    assert type(bot.pending_events[-1]) is Bot.ConfigEdited


def test_config_edit_to_the_same_config_records_nothing() -> None:
    bot = a_bot()

    bot.edit_config(a_cause(1), a_config())

    assert (len(bot.pending_events), bot.config_version) == (1, 1)


def test_bot_history_shows_every_config_version() -> None:
    configs = [a_config(take_profit_pct=Decimal(tp)) for tp in ("2", "3", "1.5")]
    bot = a_bot(config=configs[0])
    bot.start(a_cause(1))
    bot.edit_config(a_cause(2), configs[1])
    bot.edit_config(a_cause(3), configs[2])
    events = list(bot.pending_events)

    # Each version, and when it took effect, as the bot looked after each of its events.
    history: dict[int, tuple[object, object]] = {}
    for upto in range(1, len(events) + 1):
        past = replay(events[:upto])
        history.setdefault(past.config_version, (past.config, past.modified_on))

    assert history == {1: (configs[0], at(0)), 2: (configs[1], at(2)), 3: (configs[2], at(3))}


def test_config_pair_change_with_an_open_deal_is_refused() -> None:
    bot = bot_in("running")
    bot.start_deal(a_cause(5), DEAL_ID)

    with pytest.raises(DomainError) as caught:
        bot.edit_config(a_cause(6), a_config(pair="ETH/USDT"))

    assert (caught.value.code, caught.value.field) == ("DEAL_OPEN", "pair")
    assert bot.config.pair == "BTC/USDT"


def test_config_other_change_with_an_open_deal_is_accepted() -> None:
    bot = bot_in("running")
    bot.start_deal(a_cause(5), DEAL_ID)

    bot.edit_config(a_cause(6), a_config(take_profit_pct=Decimal(4)))

    assert bot.config.take_profit_pct == 4


# --- paper training and promotion -----------------------------------------------------------


def test_paper_started_at_is_the_first_start_only() -> None:
    bot = a_bot()
    bot.start(a_cause(1))
    bot.pause(a_cause(2))
    bot.start(a_cause(3))

    assert bot.paper_started_at == at(1)


def test_live_bot_start_sets_no_paper_start() -> None:
    bot = a_bot(mode=BotMode.LIVE)

    bot.start(a_cause(1))

    assert bot.stage is LifecycleStage.LIVE_TRADING
    assert bot.paper_started_at is None


def test_promotion_to_live_records_the_date() -> None:
    bot = bot_in("running")

    bot.promote_to_live(a_cause(30, actor="user-1"))

    assert (bot.mode, bot.stage, bot.promoted_at) == (
        BotMode.LIVE,
        LifecycleStage.LIVE_TRADING,
        at(30),
    )
    assert bot.paper_started_at == at(1)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: a_bot(mode=BotMode.LIVE), "BOT_ALREADY_LIVE"),
        (lambda: bot_in("stopped"), "BOT_STOPPED"),
    ],
    ids=["already-live", "stopped"],
)
def test_promotion_refused_records_nothing(make: Callable[[], Bot], code: str) -> None:
    bot = make()
    recorded = len(bot.pending_events)

    with pytest.raises(InvalidTransitionError) as caught:
        bot.promote_to_live(a_cause(30))

    assert caught.value.code == code
    assert len(bot.pending_events) == recorded


def test_promoted_bot_second_promotion_raises_already_live() -> None:
    bot = bot_in("paused")
    bot.promote_to_live(a_cause(30))

    with pytest.raises(InvalidTransitionError) as caught:
        bot.promote_to_live(a_cause(31))

    assert caught.value.code == "BOT_ALREADY_LIVE"


# --- deals ----------------------------------------------------------------------------------


def test_running_bot_start_and_finish_deal_counts_both() -> None:
    bot = bot_in("running")

    bot.start_deal(a_cause(5), DEAL_ID)
    assert (bot.open_deal_id, bot.deals_opened, bot.deals_finished) == (DEAL_ID, 1, 0)

    bot.finish_deal(a_cause(6), DEAL_ID)
    bot.start_deal(a_cause(7), OTHER_DEAL_ID)

    assert (bot.open_deal_id, bot.deals_opened, bot.deals_finished) == (OTHER_DEAL_ID, 2, 1)


def test_bot_with_an_open_deal_start_deal_raises_deal_open() -> None:
    bot = bot_in("running")
    bot.start_deal(a_cause(5), DEAL_ID)

    with pytest.raises(InvalidTransitionError) as caught:
        bot.start_deal(a_cause(6), OTHER_DEAL_ID)

    assert caught.value.code == "DEAL_OPEN"
    assert (bot.open_deal_id, bot.deals_opened) == (DEAL_ID, 1)


@pytest.mark.parametrize("status", ["created", "paused", "stopped", "error"])
def test_bot_not_running_start_deal_is_refused(status: str) -> None:
    bot = bot_in(status)
    recorded = len(bot.pending_events)

    with pytest.raises(InvalidTransitionError) as caught:
        bot.start_deal(a_cause(5), DEAL_ID)

    assert caught.value.code == f"BOT_{status.upper()}"
    assert len(bot.pending_events) == recorded


@pytest.mark.parametrize("open_deal", [None, OTHER_DEAL_ID])
def test_finish_deal_of_a_deal_that_is_not_open_raises_deal_not_open(open_deal) -> None:
    bot = bot_in("running")
    if open_deal:
        bot.start_deal(a_cause(5), open_deal)
    recorded = len(bot.pending_events)

    with pytest.raises(InvalidTransitionError) as caught:
        bot.finish_deal(a_cause(6), DEAL_ID)

    assert caught.value.code == "DEAL_NOT_OPEN"
    assert len(bot.pending_events) == recorded


def test_paused_bot_finish_deal_closes_its_open_deal() -> None:
    bot = bot_in("running")
    bot.start_deal(a_cause(5), DEAL_ID)
    bot.pause(a_cause(6))

    bot.finish_deal(a_cause(7), DEAL_ID)

    assert (bot.open_deal_id, bot.deals_finished) == (None, 1)


# --- events as the record -------------------------------------------------------------------


def test_bot_events_carry_time_actor_and_correlation() -> None:
    bot = a_bot(cause=a_cause(0, actor="user-1", correlation_id="req-1"))
    bot.start(a_cause(1, actor="engine", correlation_id="step-7"))

    created, started = bot.pending_events

    assert (created.timestamp, created.actor, created.correlation_id) == (at(0), "user-1", "req-1")
    assert (started.timestamp, started.actor, started.correlation_id) == (
        at(1),
        "engine",
        "step-7",
    )


def test_bot_rebuilt_from_its_events_equals_the_bot() -> None:
    bot = bot_in("error")
    bot.reset_error(a_cause(10))
    bot.edit_config(a_cause(11), a_config(stop_loss_pct=Decimal(15)))
    bot.promote_to_live(a_cause(12))
    bot.start(a_cause(13))
    bot.start_deal(a_cause(14), DEAL_ID)

    assert state_of(replay(bot.pending_events)) == state_of(bot)


def test_created_event_v1_without_mode_upcasts_to_paper() -> None:
    state: dict[str, object] = {"name": "old bot"}

    Bot.Created.upcast_v1_v2(state)

    assert state["mode"] is BotMode.PAPER
