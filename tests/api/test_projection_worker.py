"""Read models off the engine's path (issue 15): a live step only wakes the projections'
thread, which brings them up to the log; /health shows it and how far behind they are."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

BOT = "query($id: ID!) { bot(id: $id) { status dealsOpened } }"


def test_a_live_step_leaves_the_read_models_to_their_own_thread(server) -> None:
    runtime = server.runtime
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)
    worker = runtime.projection_worker
    woken = []
    runtime.loop.after_step = lambda events: woken.append(events) or worker.wake(events)
    server.clock.current += timedelta(seconds=1)
    runtime.loop.step()  # the bot opens its first deal; no refresh on this thread
    assert woken and woken[0] > 0
    assert max(runtime.read_models.lag().values()) > 0, "the step did not wait for them"
    health = runtime.health()["projections"]
    assert health["worker"]["running"] is False and max(health["lag"].values()) > 0

    worker.start()
    try:
        deadline = time.monotonic() + 30

        def opened() -> int:
            return server.gql(BOT, {"id": bot_id}, alice.token)["bot"]["dealsOpened"]

        # (the positions move as a batch is made; its rows are read once it is committed)
        while (max(runtime.read_models.lag().values()) or not opened()) and (
                time.monotonic() < deadline):
            time.sleep(0.05)
        assert opened() == 1
        health = runtime.health()["projections"]
        assert health["worker"]["running"] is True and health["worker"]["rounds"] >= 1
        assert set(health["lag"].values()) == {0} and health["status"] == "green"
    finally:
        worker.stop()
    assert not worker.running


def test_health_counts_a_batch_only_once_its_rows_are_committed(server) -> None:
    """A batch the projections made is not claimed by ``/health`` (nor ``lag``) before its
    commit: while another writer holds the views' file, the lag stays where it was."""
    import sqlite3
    import threading

    runtime = server.runtime
    alice = server.user("alice")
    server.start_bot(alice, server.create_bot(alice))
    server.clock.current += timedelta(seconds=1)
    runtime.loop.step()  # appended; the read models are not brought forward here
    head = runtime.trading.recorder.max_notification_id()
    behind = runtime.health()["projections"]["lag"]
    assert max(behind.values()) > 0
    projector = runtime.read_models.projections._projector
    holder = sqlite3.connect(runtime.read_models.store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the views' write lock: the batch's commit waits
    catching_up = threading.Thread(target=runtime.read_models.catch_up)
    catching_up.start()
    try:
        _until("the batch made", lambda: min(t.position for t in projector.tracked) == head)
        assert runtime.read_models.lag() == behind
        assert runtime.health()["projections"]["lag"] == behind
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        catching_up.join(60)
    assert set(runtime.health()["projections"]["lag"].values()) == {0}


class _Away:
    """The server's read models, behind a database that is away while ``away`` is set."""

    def __init__(self, views) -> None:
        self.views, self.away = views, True

    def catch_up(self) -> int:
        if self.away:
            raise OSError("database is locked")
        return self.views.catch_up()

    def lag(self) -> dict[str, int]:
        return self.views.lag()


def _until(what: str, check) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_failed_catch_ups_show_on_health_and_the_thread_goes_on_until_stopped(
        server, caplog) -> None:
    runtime = server.runtime
    worker = runtime.projection_worker
    away = worker.views = _Away(worker.views)
    worker.poll = 0.05
    caplog.set_level(logging.ERROR, logger="tradetape.projections")
    worker.start()
    try:
        _until("two failed rounds", lambda: worker.rounds >= 2)
        shown = runtime.health()["projections"]["worker"]
        assert shown["running"] is True  # the thread outlived its failed rounds
        assert shown["last_error"] == "OSError: database is locked"
        failed = [r for r in caplog.records if r.name == "tradetape.projections"]
        assert failed and all(r.getMessage() == "projections: catch-up failed: OSError: "
                              "database is locked" and r.exc_info is None for r in failed)
        away.away = False
        _until("a good round", lambda: runtime.health()["projections"]["worker"][
            "last_error"] is None)
    finally:
        worker.stop()
    assert not worker.running
    rounds = worker.rounds
    worker.wake()
    time.sleep(0.2)
    assert worker.rounds == rounds  # stopped: no round after it
