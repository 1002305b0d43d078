"""The appending thread of a heavy candle (``application/appends_ahead.py``): appends are
stored in the order they were sent, and none behind a failed one is sent (it could hold an
aggregate's next versions: stored after a refused one, they would leave a gap, and its
markets, rebuilt from the log for the failure, would walk the candle twice)."""

from __future__ import annotations

import threading

import pytest

from application.appends_ahead import AppendsAhead, NotSent


def test_appends_run_in_the_order_sent_on_one_thread_other_than_the_callers():
    ahead, done = AppendsAhead(), []

    def write(n):
        def run():
            done.append((n, threading.current_thread().name))
            return [n]
        return run

    futures = [ahead.send(write(n)) for n in range(20)]
    assert [f.result() for f in futures] == [[n] for n in range(20)]
    assert [n for n, _ in done] == list(range(20))
    names = {name for _, name in done}
    assert len(names) == 1 and threading.current_thread().name not in names
    before = ahead.processor
    ahead.send(lambda: [sum(range(3_000_000))]).result()
    assert ahead.processor > before, "the appending thread's processor time is counted"
    ahead.close()


def test_nothing_queued_behind_a_failed_append_is_sent_until_the_loop_has_settled():
    ahead, sent, gate = AppendsAhead(), [], threading.Event()

    def failing():
        gate.wait(5)  # (the two behind it are queued before it fails)
        raise ConnectionError("cut")

    first = ahead.send(failing)
    behind = [ahead.send(lambda n=n: sent.append(n) or [n]) for n in range(2)]
    gate.set()
    with pytest.raises(ConnectionError):
        first.result()
    for future in behind:
        with pytest.raises(NotSent):
            future.result()
    assert sent == [], "never sent"
    ahead.settled()
    assert ahead.send(lambda: sent.append(9) or [9]).result() == [9]
    assert sent == [9]
    ahead.close()


def test_the_setting_defaults_to_sending_ahead_and_refuses_what_is_not_a_count():
    from application.appends_ahead import AHEAD_AGGREGATES
    from application.server_settings import ServerSettings
    from domain.errors import DomainError

    assert ServerSettings.from_environ({}).appends_ahead == AHEAD_AGGREGATES
    assert ServerSettings.from_environ({"TRADETAPE_APPENDS_AHEAD": " 0 "}).appends_ahead == 0
    assert ServerSettings.from_environ({"TRADETAPE_APPENDS_AHEAD": "500"}).appends_ahead == 500
    for bad in ("many", "1.5", "-1", "99999999999"):
        with pytest.raises(DomainError) as refused:
            ServerSettings.from_environ({"TRADETAPE_APPENDS_AHEAD": bad})
        assert refused.value.code == "INVALID_SETTING"
