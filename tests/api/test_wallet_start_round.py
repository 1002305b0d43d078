"""The wallet monitor's round at the server's start is one of its rounds on ``/health``
(``background.tasks.wallet-monitor``): counted in ``rounds``, its time the last success;
the schedule's tick right after it (no round due) is not counted, and the next round a
period later is the second. On SQLite and PostgreSQL (where the monitor runs on one
process of the deployment at a time, its turn taken at start)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import T0, served

pytestmark = pytest.mark.timeout(120)


def test_the_start_round_is_counted_on_health(persistent_store_url, monkeypatch):
    with served(persistent_store_url, monkeypatch) as server:
        runtime = server.runtime
        wallet = next(s for s in runtime.schedules if s.name == "wallet-monitor")
        wallet.start = lambda: None  # (its rounds are run here, not on its thread)
        alice = server.user("alice")  # an account to observe: her paper account
        runtime.start()

        def task() -> dict:
            health = server.client.get("/health").json()
            return health["background"]["tasks"]["wallet-monitor"]

        assert (task()["status"], task()["rounds"], task()["last_ok_at"]) == (
            "green", 1, T0.isoformat())
        assert runtime.wallet_monitor.state.accounts >= 1  # (it did observe)
        server.clock.current = T0 + timedelta(seconds=1)
        wallet.run_once()  # the schedule's first tick: no round due yet
        assert (task()["rounds"], task()["last_ok_at"]) == (1, T0.isoformat())

        later = T0 + timedelta(seconds=runtime.settings.wallet_seconds)
        server.clock.current = later
        wallet.run_once()
        assert (task()["status"], task()["rounds"], task()["last_ok_at"]) == (
            "green", 2, later.isoformat())
        assert alice.paper_account_id  # (observed in both rounds)
