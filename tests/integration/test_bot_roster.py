"""Bots are created and stopped together with their owner's roster, so the limit and unique
names hold for writers that share nothing but the store: here two ``Trading`` applications
(each its own connections and aggregate cache, as two processes have) on one SQLite file
or PostgreSQL schema, racing from threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.clock import RandomIds, SystemClock
from application.bootstrap import open_trading
from application.bot_roster import RefusedError
from application.replay import read_log
from domain.bots import Bot, BotStatus
from domain.errors import DomainError
from domain.recording import Cause, topic_of
from domain.rosters import BotRoster, roster_id
from tests.integration.conftest import CONFIG, T0

LIMIT = 4


def create(trading, name: str, owner: str = "alice", limit: int = LIMIT) -> object:
    """The bot's id, or the codes of why it was refused."""
    try:
        return trading.create_bot(owner_id=owner, name=name, config=CONFIG,
                                  exchange_account_id="acc-1", max_bots=limit)
    except RefusedError as refused:
        return sorted(e.code for e in refused.errors)


def active_names(trading, owner: str = "alice") -> list[str]:
    names = {}
    for note in read_log(trading, [topic_of(Bot.Created), topic_of(Bot.Stopped)]):
        event = trading.mapper.to_domain_event(note)
        if isinstance(event, Bot.Created) and event.owner_id == owner:
            names[event.originator_id] = event.name
        elif isinstance(event, Bot.Stopped):
            names.pop(event.originator_id, None)
    return sorted(names.values())


@pytest.fixture
def writers(persistent_store_url):
    """Two applications on one store, with the wall clock and random ids of a server."""
    apps = [open_trading(persistent_store_url, clock=SystemClock(), ids=RandomIds())
            for _ in range(2)]
    yield apps
    for app in apps:
        app.close()


def test_racing_writers_never_pass_the_limit_nor_share_a_name(writers):
    names = ["Grid", "grid", " GRID", *(f"bot {n}" for n in range(9))]
    start = threading.Barrier(len(names))

    def attempt(i: int) -> object:
        start.wait()
        return create(writers[i % 2], names[i])

    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(attempt, range(len(names))))

    refused = [a for a in answers if isinstance(a, list)]
    assert len(answers) - len(refused) == LIMIT
    assert all(codes and set(codes) <= {"BOT_LIMIT_REACHED", "BOT_NAME_DUPLICATE"}
               for codes in refused), refused
    active = active_names(writers[0])
    assert len(active) == LIMIT
    assert len({n.casefold().strip() for n in active}) == LIMIT
    roster = writers[1].load(roster_id("alice"), BotRoster)
    assert sorted(roster.bots.values()) == active


def test_stopping_a_bot_in_one_process_frees_its_slot_and_name_in_another(writers):
    first, second = writers
    made = [create(first, f"bot {n}") for n in range(LIMIT)]
    assert create(second, "one more") == ["BOT_LIMIT_REACHED"]
    assert create(second, "BOT 0") == ["BOT_LIMIT_REACHED", "BOT_NAME_DUPLICATE"]
    second.stop_bot(made[0], actor="alice")
    assert not isinstance(create(first, "BOT 0"), list)
    assert create(second, "one more") == ["BOT_LIMIT_REACHED"]
    assert [type(e).__name__ for e in first.events.get(roster_id("alice"))][-2:] == [
        "BotReleased", "BotEnrolled"]


def test_an_older_store_with_bots_and_no_roster_gets_one_built_from_its_bots(
        persistent_store_url):
    older = open_trading(persistent_store_url, clock=SystemClock(), ids=RandomIds())
    try:  # what an older version stored: bots, no roster (one of them stopped)
        cause = Cause(T0, "alice", "before-rosters")
        bots = [Bot.create(older.ids.new_id(), cause, name=f"old {n}", owner_id="alice",
                           exchange_account_id="acc-1", config=CONFIG) for n in range(3)]
        bots[1].stop(cause)
        older.save_all(*bots)
        before = older.recorder.max_notification_id()
        assert create(older, "OLD 0") == ["BOT_NAME_DUPLICATE"]
        assert not isinstance(create(older, "old 1"), list)  # stopped: its name is free
        assert create(older, "new", limit=3) == ["BOT_LIMIT_REACHED"]
        stored = list(older.events.get(roster_id("alice")))
        assert stored[0].bots == {str(bots[0].id): "old 0", str(bots[2].id): "old 2"}
        # The bots' own events are as they were: the roster is new, nothing was rewritten.
        assert [n.id for n in read_log(older, last=before)] == list(range(1, before + 1))
    finally:
        older.close()


def test_a_bot_stopped_without_its_roster_frees_its_slot_when_it_is_needed(writers):
    first, _ = writers
    made = [create(first, f"bot {n}", limit=2) for n in range(2)]
    bot = first.get_bot(made[0])
    bot.stop(first.cause("alice"))
    first.save_all(bot)  # as bench scripts or old code did: the roster not told
    assert first.get_bot(made[0]).status is BotStatus.STOPPED
    assert not isinstance(create(first, "bot 0", limit=2), list)
    assert [type(e).__name__ for e in first.events.get(roster_id("alice"))][-2:] == [
        "BotReleased", "BotEnrolled"]


def test_refusals_list_every_reason_and_write_nothing(writers):
    first, _ = writers
    create(first, "only", limit=1)
    head = first.recorder.max_notification_id()
    with pytest.raises(RefusedError) as refused:
        first.create_bot(owner_id="alice", name="Only", config=CONFIG,
                         exchange_account_id="acc-1", max_bots=1,
                         other_problems=lambda: [DomainError("no", code="ELSE")])
    assert [e.code for e in refused.value.errors] == [
        "BOT_LIMIT_REACHED", "BOT_NAME_DUPLICATE", "ELSE"]
    assert first.recorder.max_notification_id() == head


def test_a_new_user_is_registered_with_an_empty_roster(persistent_store_url):
    from application.bootstrap import open_identity
    from tests.fakes import RecordingMailer
    from tests.integration.identity.conftest import PASSWORD, SECRET_KEY

    identity = open_identity(persistent_store_url, mailer=RecordingMailer(), bcrypt_rounds=4,
                             secret_key=SECRET_KEY)
    try:
        user_id = identity.register("new@example.com", PASSWORD, verified=True)
        owner = str(user_id)
        roster = identity.trading.load(roster_id(owner), BotRoster)
        assert roster.bots == {} and roster.version == 1
        create(identity.trading, "first", owner=owner)
        assert [type(e).__name__ for e in identity.trading.events.get(roster_id(owner))] == [
            "Opened", "BotEnrolled"]
    finally:
        identity.close()
