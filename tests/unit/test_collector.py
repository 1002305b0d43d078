"""Pauses of the garbage collector from several threads (an engine step beside a projection
batch) never leave it off: it runs again once the last pause ends."""

from __future__ import annotations

import gc
import threading

import pytest

from application import collector
from application.collector import collector_paused


def test_overlapping_pauses_leave_the_collector_on_whichever_ends_first():
    assert gc.isenabled()
    for first_to_end in (0, 1):
        pauses = [collector_paused(), collector_paused()]
        pauses[0].__enter__()
        pauses[1].__enter__()
        assert not gc.isenabled()
        pauses[first_to_end].__exit__(None, None, None)
        assert not gc.isenabled()  # the other still runs its batch
        pauses[1 - first_to_end].__exit__(None, None, None)
        assert gc.isenabled()


def test_pauses_in_many_threads_at_once_leave_the_collector_on():
    start = threading.Barrier(8)

    def batches() -> None:
        start.wait()
        for _ in range(2000):
            with collector_paused():
                pass

    threads = [threading.Thread(target=batches) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_pause_that_fails_still_gives_the_collector_back():
    with pytest.raises(ZeroDivisionError), collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_a_start_freezes_what_it_built_once_a_process(monkeypatch):
    monkeypatch.setattr(collector._PAUSES, "frozen", False)
    before = gc.get_freeze_count()
    try:
        # (dicts holding a list: the collector tracks them; one of ints alone it does not)
        with collector_paused(freeze_survivors=True):
            built = [{"engine": [n]} for n in range(1000)]
            assert gc.get_freeze_count() == before  # not while the start still builds
        frozen = gc.get_freeze_count()
        assert frozen >= before + 2 * len(built)  # out of every later collection
        assert gc.isenabled()
        with collector_paused(freeze_survivors=True):
            again = [{"engine": [n]} for n in range(1000)]
        # a second start freezes nothing more (its 2,000 objects would be counted); the
        # count may fall meanwhile, as frozen objects of this process are freed (another
        # test's thread in the same worker)
        assert gc.get_freeze_count() <= frozen
        assert len(again) == len(built)
    finally:
        gc.unfreeze()


def test_a_start_overlapping_a_batch_freezes_when_the_last_pause_ends(monkeypatch):
    monkeypatch.setattr(collector._PAUSES, "frozen", False)
    try:
        batch = collector_paused()
        batch.__enter__()
        with collector_paused(freeze_survivors=True):
            built = [{"engine": n} for n in range(1000)]
        before = gc.get_freeze_count()
        assert not gc.isenabled()  # the batch still runs
        batch.__exit__(None, None, None)
        assert gc.get_freeze_count() >= before + len(built)  # frozen at its end
        assert gc.isenabled()
    finally:
        gc.unfreeze()
