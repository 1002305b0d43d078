"""The memory store writes an event's JSON only when something reads it: what it then gives
back must be exactly what a durable store wrote, and it refuses what a durable store refuses."""

from __future__ import annotations

import pytest

from adapters.event_store.memory import MemoryRecorder, PendingStoredEvent
from domain.errors import ConcurrencyConflictError
from tests.integration.conftest import CONFIG, SCRIPT_EVENTS, T0, run_script, stored_rows


@pytest.fixture(autouse=True, params=["ours", "TRADETAPE_LIBRARY_PATHS=1"])
def paths(request, monkeypatch) -> str:
    """Every test with our store, and with the library's own POPO store (the seam's
    switch, application/library_seam.py): the same answers."""
    if "=" in request.param:
        monkeypatch.setenv(*request.param.split("="))
    return request.param


def test_the_memory_store_gives_back_the_bytes_sqlite_wrote(tmp_path, trading, paths):
    memory = trading("memory", start=T0, seed="same")
    assert isinstance(memory.recorder, MemoryRecorder) == (paths == "ours")
    run_script(memory)
    sqlite = trading(f"sqlite:///{tmp_path / 'events.sqlite'}", start=T0, seed="same")
    run_script(sqlite)

    assert len(stored_rows(memory)) == SCRIPT_EVENTS
    assert stored_rows(memory) == stored_rows(sqlite)


@pytest.mark.parametrize("paths", ["ours"], indirect=True)  # (the library encodes at once)
def test_an_appended_event_is_encoded_only_when_first_read(trading):
    app = trading("memory")
    bot_id = app.create_bot(
        owner_id="alice", name="lazy", config=CONFIG,
        exchange_account_id="acc-1",
    )
    (stored,) = app.recorder.select_events(bot_id)
    assert isinstance(stored, PendingStoredEvent)
    assert "state" not in vars(stored)

    assert app.get_bot(bot_id).name == "lazy"
    assert b'"name":"lazy"' in vars(stored)["state"]


def test_a_stale_writer_gets_a_conflict_and_the_log_keeps_the_first(trading):
    app = trading("memory")
    bot_id = app.create_bot(
        owner_id="alice", name="raced", config=CONFIG,
        exchange_account_id="acc-1",
    )
    first, second = app.get_bot(bot_id), app.get_bot(bot_id)
    first.start(app.cause("alice"))
    app.save_all(first)
    second.start(app.cause("bob"))

    with pytest.raises(ConcurrencyConflictError):
        app.save_all(second)
    assert [n.originator_version for n in app.recorder.select_notifications(None, 10)
            if n.originator_id == bot_id] == [1, 2]
    assert b'"actor":"alice"' in app.recorder.select_events(bot_id)[1].state


def test_a_batch_with_one_stale_aggregate_appends_none_of_its_events(trading):
    app = trading("memory")
    ids = [
        app.create_bot(owner_id="alice", name=name, config=CONFIG, exchange_account_id="acc-1")
        for name in ("fresh", "stale")
    ]
    fresh, stale, winner = app.get_bot(ids[0]), app.get_bot(ids[1]), app.get_bot(ids[1])
    winner.start(app.cause("bob"))
    app.save_all(winner)
    head = app.recorder.max_notification_id()
    fresh.start(app.cause("alice"))
    stale.start(app.cause("alice"))

    with pytest.raises(ConcurrencyConflictError):
        app.save_all(fresh, stale)
    assert app.recorder.max_notification_id() == head
    assert app.get_bot(ids[0]).version == 1
    fresh = app.get_bot(ids[0])
    fresh.start(app.cause("alice"))
    app.save_all(fresh)  # version 2 is free again: the refused batch left no trace
    assert app.get_bot(ids[0]).version == 2


def test_events_are_selected_by_version_range_either_way_and_by_string_id(trading):
    app = trading("memory")
    bot_id = app.create_bot(owner_id="alice", name="b", config=CONFIG, exchange_account_id="a")
    for _ in range(2):
        app.start_bot(bot_id)
        app.pause_bot(bot_id)
    versions = lambda **kw: [s.originator_version for s in app.recorder.select_events(**kw)]  # noqa: E731

    assert versions(originator_id=bot_id) == [1, 2, 3, 4, 5]
    assert versions(originator_id=str(bot_id), gt=1, lte=4) == [2, 3, 4]
    assert versions(originator_id=bot_id, desc=True, limit=2) == [5, 4]
    assert versions(originator_id=app.ids.new_id()) == []


def test_the_recordings_of_an_append_are_the_notifications_readers_get(trading):
    app = trading("memory")
    bot_id = app.create_bot(owner_id="alice", name="b", config=CONFIG, exchange_account_id="a")
    bot = app.get_bot(bot_id)
    bot.start(app.cause("alice"))
    bot.pause(app.cause("alice"))
    head = app.recorder.max_notification_id()

    recordings = app.save(bot)
    assert len(recordings) == 2
    notes = app.recorder.select_notifications(start=head + 1, limit=10)
    assert [r.notification for r in recordings] == notes
    assert [r.domain_event.originator_version for r in recordings[:]] == [2, 3]
    assert app.recorder.select_notifications(start=head, limit=10, stop=head + 1,
                                             inclusive_of_start=False) == notes[:1]
