"""Read models off the engine's path (issue 15): a live step only wakes the projections'
thread, which brings them up to the log; /health shows it and how far behind they are."""

from __future__ import annotations

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
        while max(runtime.read_models.lag().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.gql(BOT, {"id": bot_id}, alice.token)["bot"]["dealsOpened"] == 1
        health = runtime.health()["projections"]
        assert health["worker"]["running"] is True and health["worker"]["rounds"] >= 1
        assert set(health["lag"].values()) == {0} and health["status"] == "green"
    finally:
        worker.stop()
    assert not worker.running
