"""A reconciliation that fails at the server's start with an error outside the known codes
(here the database refusing a query) no longer stops the start: the server starts and
answers, ``/health`` shows the reconciliation amber with the error's kind and code (never
its message, which may quote a table or a row), and the schedule's next round, when due,
tries again and turns it green."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg.errors
import pytest

pytestmark = pytest.mark.timeout(120)
SECRET = "secret_table_name"


def test_the_server_starts_and_retries_a_reconciliation_that_failed(server):
    runtime = server.runtime
    markets = runtime.paper.live_markets
    failing = [True]

    def live_markets():
        if failing.pop() if failing else False:
            raise psycopg.errors.UndefinedTable(f'relation "{SECRET}" does not exist')
        return markets()

    runtime.paper.live_markets = live_markets
    runtime.start()  # raised before: the server never started
    assert runtime.loop.running
    answer = server.client.get("/health")
    task = answer.json()["background"]["tasks"]["reconciliation"]
    assert task["status"] == "amber"
    assert (task["error"]["kind"], task["error"]["code"]) == ("psycopg.UndefinedTable",
                                                              "42P01")
    assert SECRET not in answer.text

    server.clock.current += timedelta(seconds=61)  # due again: its thread's next round
    deadline = time.monotonic() + 30
    while True:
        task = server.client.get("/health").json()["background"]["tasks"]["reconciliation"]
        if task["status"] == "green":
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    assert task["error"] is None and task["rounds"] == 2
