"""Pauses of the garbage collector from several threads (an engine step beside a projection
batch) never leave it off: it runs again once the last pause ends."""

from __future__ import annotations

import gc
import threading

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
