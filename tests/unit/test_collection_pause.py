"""The collector held off during a start's loads comes back as it was: on when it was on
(else a server would never reclaim a reference cycle again), off when it was off, and not
before the last of overlapping pauses ends; a start's freeze happens once a process."""

from __future__ import annotations

import gc
import threading

import pytest

from application import collection_pause
from application.collection_pause import collection_paused


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_off_during_a_pause_and_on_again_after():
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_that_fails_still_gives_the_collector_back():
    with pytest.raises(ZeroDivisionError), collection_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_on_two_threads_end_with_the_last():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def second() -> None:
        first_in.wait(5)
        with collection_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()

    thread = threading.Thread(target=second)
    thread.start()
    with collection_paused():
        first_in.set()
        second_in.wait(5)
    first_out.set()
    thread.join(5)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()


def test_a_start_freezes_what_it_built_once_a_process(monkeypatch):
    monkeypatch.setattr(collection_pause._state, "frozen", False)
    before = gc.get_freeze_count()
    try:
        with collection_paused(freeze=True):
            built = [{"engine": n} for n in range(1000)]
        frozen = gc.get_freeze_count()
        assert frozen >= before + len(built)  # out of every later collection
        with collection_paused(freeze=True):
            [{"engine": n} for n in range(1000)]
        assert gc.get_freeze_count() == frozen  # a second start freezes nothing more
    finally:
        gc.unfreeze()
