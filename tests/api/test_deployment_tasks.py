"""A split deployment on PostgreSQL: two engine processes and an api, one database.

The billing sweep sweeps every user's subscriptions, so it runs on one engine at a time:
the other shows it on standby and takes it over when the first stops or dies. The api has
no sweep of its own, yet its ``/health`` shows the engines' tasks, each with the process it
ran on (a failure's kind, never its message), and no longer shows a process that died.
Each "process" is a runtime as ``tradetape serve --role ...`` opens it; the test runs their
rounds and publications itself (as their threads would)."""

from __future__ import annotations

import time
from contextlib import ExitStack

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from application.bootstrap import open_runtime
from application.server_settings import ServerSettings
from application.settings import _connect_kwargs, parse_database_url
from tests.api.conftest import T0

pytestmark = pytest.mark.timeout(120)
SECRET = "sk_live_do_not_show"


def open_process(stack: ExitStack, url: str, role: str, monkeypatch):
    from adapters.clock import SettableClock

    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    runtime = open_runtime(ServerSettings(database_url=url, speed=60), role=role)
    clock = SettableClock(T0)
    runtime.clock = runtime.trading.clock = runtime.loop.clock = clock
    stop, stopped = runtime.stop, []

    def stop_once() -> None:  # (the test stops one itself)
        if not stopped:
            stopped.append(True)
            stop()

    runtime.stop = stop_once
    stack.callback(stop_once)
    return runtime


def schedule(runtime, name: str):
    return next(s for s in runtime.schedules if s.name == name)


def sweep_fails(runtime) -> None:
    def sweep(**_):
        raise KeyError(SECRET)  # as Stripe's answer our code cannot read
    runtime.billing.sweep = sweep


def tag(runtime) -> str:
    """How the api's public /health names ``runtime``'s process (role and a keyed tag, not
    its host and pid: ``application/public_health.py``; the test's "processes" share the
    api's key, being one Python process)."""
    from application.public_health import process_tag

    return process_tag(runtime.task_board.process.name, runtime.role)


def rows(health: dict, task: str) -> list[dict]:
    return [row for row in health["background"]["deployment"]["tasks"]
            if row["task"] == task]


def test_the_sweep_runs_on_one_engine_and_the_api_shows_where_it_failed(
        postgres_url, monkeypatch):
    with ExitStack() as stack:
        first = open_process(stack, postgres_url, "engine", monkeypatch)
        second = open_process(stack, postgres_url, "engine", monkeypatch)
        api = open_process(stack, postgres_url, "api", monkeypatch)
        client = stack.enter_context(TestClient(create_app(api, manage_runtime=False)))
        for engine in (first, second):
            sweep_fails(engine)
        schedule(first, "billing-sweep").run_once()  # first asks first: it sweeps
        schedule(second, "billing-sweep").run_once()  # the other waits its turn
        for engine in (first, second):
            engine.task_board.publish()

        answer = client.get("/health")
        health = answer.json()
        assert health["background"]["status"] == "amber"
        assert "tasks" in health["background"]  # the api's own, as before
        failed, waiting = sorted(rows(health, "billing-sweep"), key=lambda r: r["standby"])
        assert failed["process"] == tag(first)
        assert failed["role"] == "engine" and failed["standby"] is False
        assert failed["status"] == "amber" and failed["error"]["kind"] == "KeyError"
        assert failed["error"]["failures"] == 1
        assert waiting["process"] == tag(second)
        assert waiting["standby"] is True and waiting["rounds"] == 0
        assert SECRET not in answer.text
        # the page finds its own rows in the deployment's list by this name
        assert health["process"]["name"] == tag(api)
        assert {row["process"] for row in rows(health, "reconciliation")} == {
            tag(first), tag(second)}
        assert len({tag(first), tag(second), tag(api)}) == 3

        first.stop()  # gracefully: its turn goes at once, its rows with it
        del second.billing.sweep  # (its sweep works: the subscriptions are fine)
        lock = schedule(second, "billing-sweep").lock
        lock.try_again = 0  # (asked again at once, not 5 s later)
        schedule(second, "billing-sweep").run_once()
        second.task_board.publish()
        health = client.get("/health").json()
        [sweep] = rows(health, "billing-sweep")
        assert sweep["process"] == tag(second)
        assert (sweep["standby"], sweep["status"], sweep["rounds"]) == (False, "green", 1)
        assert health["background"]["status"] == "green"


def test_an_engine_that_dies_is_taken_over_and_its_rows_expire(postgres_url, monkeypatch):
    with ExitStack() as stack:
        first = open_process(stack, postgres_url, "engine", monkeypatch)
        second = open_process(stack, postgres_url, "engine", monkeypatch)
        api = open_process(stack, postgres_url, "api", monkeypatch)
        api.task_board.ttl = 3.0  # a process silent this long is dead
        client = stack.enter_context(TestClient(create_app(api, manage_runtime=False)))
        schedule(first, "billing-sweep").run_once()
        lock = schedule(second, "billing-sweep").lock
        lock.try_again = 0
        schedule(second, "billing-sweep").run_once()
        assert schedule(second, "billing-sweep").health.standby is True
        first.task_board.publish()
        last_report = time.monotonic()

        # first dies (kill -9): the database ends its sessions, its lock with them
        env = parse_database_url(postgres_url).env
        with psycopg.connect(**_connect_kwargs(env), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "
                          "locktype = 'advisory' AND classid = %s AND objid = %s",
                          schedule(first, "billing-sweep").lock.keys)
            while admin.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                                "classid = %s AND objid = %s",
                                schedule(first, "billing-sweep").lock.keys).fetchone():
                time.sleep(0.01)  # (its backend ends a moment after the signal)
        schedule(second, "billing-sweep").run_once()
        assert schedule(second, "billing-sweep").health.standby is False
        assert schedule(second, "billing-sweep").health.rounds == 1  # it swept

        time.sleep(max(0.0, last_report + 3.2 - time.monotonic()))  # first never reports
        second.task_board.publish()
        health = client.get("/health").json()
        processes = {row["process"] for row in health["background"]["deployment"]["tasks"]}
        assert processes == {tag(second)}


def test_the_wallet_monitor_runs_on_one_engine_until_it_stops(postgres_url, monkeypatch):
    """Every engine used to observe every account's balances (each asking the exchange,
    each recording): now one does, the other shows it on standby (green: nothing of its
    own to report) and takes over when the first stops."""
    from decimal import Decimal

    from domain.accounts import AccountKind

    with ExitStack() as stack:
        first = open_process(stack, postgres_url, "engine", monkeypatch)
        second = open_process(stack, postgres_url, "engine", monkeypatch)
        trading = second.trading  # (the first one's closes when it stops)
        account = trading.open_account(owner_id="u1", exchange="binance",
                                       quote_asset="USDT", kind=AccountKind.PAPER)
        trading.deposit(account, "USDT", Decimal("1000"))

        def observed() -> int:
            return sum(1 for e in trading.events.get(account)
                       if type(e).__name__ == "BalanceObserved")

        schedule(first, "wallet-monitor").run_once()
        schedule(second, "wallet-monitor").run_once()
        assert observed() == 1  # the deposit seen once
        assert second.wallet_monitor.state.last_run_at is None  # (asked no exchange)
        assert schedule(first, "wallet-monitor").health.standby is False
        assert schedule(second, "wallet-monitor").health.standby is True
        assert second.health()["wallet"]["status"] == "green"
        assert second.health()["wallet"]["standby"] is True
        # the start's round of a process on standby observes nothing either
        assert second.wallet_monitor.run(second.clock.now(), load_together=True) == 0

        trading.deposit(account, "USDT", Decimal("500"))
        first.stop()  # gracefully: its turn goes at once
        second.wallet_monitor.turn.try_again = 0  # (asked again at once, not 5 s later)
        schedule(second, "wallet-monitor").run_once()
        assert schedule(second, "wallet-monitor").health.standby is False
        assert schedule(second, "wallet-monitor").health.rounds == 1
        assert observed() == 2  # the second deposit, seen by the one that took over
        assert second.health()["wallet"]["status"] == "green"
        assert trading.get_account(account).observed["USDT"] == (Decimal("1500"),
                                                                 Decimal("0"))
