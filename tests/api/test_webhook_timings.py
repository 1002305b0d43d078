"""Where a signal's time goes: the breakdown ``TRADETAPE_WEBHOOK_TIMINGS=1`` logs for each
signal (what ``scripts/bench_webhooks.py --timings`` reads back), and the lock per webhook
(a signal waits for nothing on another webhook)."""

from __future__ import annotations

import gc
import logging
import threading
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from scripts.bench_webhooks import breakdown
from tests.api.test_webhooks import new_hook, open_deal, signal_bot, tv_alert

pytestmark = pytest.mark.timeout(120)
TRADE_PHASES = ["read", "queued", "lock", "load", "check", "bot", "engine_lock", "decide",
                "save", "answer", "total"]


def phases_of(line: str) -> dict[str, str]:
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


def test_with_timings_on_each_signal_logs_its_phases_and_the_benchmark_reads_them(
        server, monkeypatch, caplog):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    monkeypatch.setenv("TRADETAPE_WEBHOOK_TIMINGS", "1")
    caplog.set_level(logging.INFO, logger="tradetape.webhooks.timings")
    with TestClient(create_app(server.runtime, manage_runtime=False)) as timed:
        answer = timed.post(f"/webhooks/{hook['id']}", content=tv_alert(server, hook, "buy",
                                                                        "Long"))
        refused = timed.post(f"/webhooks/{hook['id']}", content=b'{"action": "buy"}')
    assert answer.status_code == 200 and open_deal(server, bot_id) is not None
    assert refused.json()["code"] == "SIGNAL_UNSIGNED"
    lines = [r.getMessage() for r in caplog.records  # (not the collector's passes)
             if r.name == "tradetape.webhooks.timings" and "total=" in r.getMessage()]
    assert len(lines) == 2
    traded, unsigned = phases_of(lines[0]), phases_of(lines[1])
    assert list(traded) == TRADE_PHASES
    # the worker thread's phases have a CPU time beside their wall time
    assert "/" in traded["save"] and "/" not in traded["queued"]
    assert list(unsigned) == ["read", "queued", "lock", "load", "answer", "total"]
    # wall times add up to the total (each phase ends where the next begins)
    walls = [float(v.split("/")[0]) for k, v in traded.items() if k != "total"]
    assert sum(walls) == pytest.approx(float(traded["total"]), abs=0.05)
    gc.collect()  # a full pass of the collector, which stops every thread: a line too
    passes = [r.getMessage() for r in caplog.records if "gc2=" in r.getMessage()]
    assert passes and all(float(p.split("gc2=")[1].split("/")[0]) >= 0 for p in passes)
    summary = breakdown("\n".join(["noise", *lines, "webhook timings (ms): gc2=12.50/3.00"]))
    rows = {row.split()[0]: row.split()[1:] for row in summary.splitlines()[1:]}
    assert list(rows) == [*TRADE_PHASES, "gc2"]
    assert rows["read"][0] == "2" and rows["save"][0] == "1"  # how many signals had it
    assert rows["gc2"] == ["1", "12.50", "12.50", "12.50", "3.00"]


def test_without_the_switch_nothing_is_timed_or_logged(server, caplog):
    alice = server.user("alice")
    hook = new_hook(server, alice, signal_bot(server, alice))
    server.step()
    caplog.set_level(logging.INFO)
    answer = server.client.post(f"/webhooks/{hook['id']}",
                                content=tv_alert(server, hook, "buy", "Long"))
    assert answer.status_code == 200
    assert not [r for r in caplog.records if "total=" in r.getMessage()]


def test_a_signal_does_not_wait_for_another_webhook_but_waits_for_its_own(server):
    alice = server.user("alice")
    busy_hook = new_hook(server, alice, signal_bot(server, alice, "busy"), name="busy")
    bot_id = signal_bot(server, alice, "free")
    free_hook = new_hook(server, alice, bot_id, name="free")
    server.step()
    webhooks, signals = server.runtime.webhooks, server.runtime.signals
    held, release = threading.Event(), threading.Event()

    def hold(webhook_id: str) -> None:  # a command or signal on that webhook, under way
        with webhooks.lock_of(UUID(webhook_id)):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, args=(busy_hook["id"],))
    holder.start()
    held.wait(10)
    answers: list = []
    free = threading.Thread(target=lambda: answers.append(signals.receive(
        UUID(free_hook["id"]), tv_alert(server, free_hook, "buy", "Free"), None)))
    waiting = threading.Thread(target=lambda: answers.append(signals.receive(
        UUID(busy_hook["id"]), tv_alert(server, busy_hook, "buy", "Busy"), None)))
    try:
        free.start()
        free.join(20)
        assert not free.is_alive() and answers[0].status == 200, answers
        assert open_deal(server, bot_id) is not None
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # the same webhook: after what holds it
    finally:
        release.set()
        holder.join(10)
        waiting.join(20)
    assert [a.status for a in answers] == [200, 200]
