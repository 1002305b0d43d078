"""Holds of users sharing a lock bucket do not wait for each other. A process kept inside
a position's hold for user A (a live exchange that does not answer) leaves B, whose hold
shares A's bucket, to open a position on another process at once; a position of A's waits
for that hold (and fails when it is kept past the wait), then opens once it is let go.
Before, B's position waited for A's hold too and failed (``lock_not_available``): one stuck
exchange call stopped the positions of every user of its bucket (38 at 10,000 users)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.event_store import exposure_stamps
from adapters.event_store.exposure_stamps import _wait_for_holds, lock_keys
from application.bootstrap import open_trading
from application.risk_limits import RiskLimits
from application.settings import _connect_kwargs, parse_database_url
from domain.risk import RiskLimitError
from tests.integration.test_exposure_hold_kept import bucket_mate
from tests.integration.test_risk_limits import EVENING
from tests.integration.test_risk_positions_workers import ApiProcess, positions_of

HELD = "u1"
LIMITS = {"maxExposureQuote": "150"}  # one position of 100 each: a second is refused
QUOTE = Decimal("100")


def _accounts(url: str, owners: list[str]) -> dict[str, str]:
    """A paper account of 10,000 USDT for each owner, LIMITS set (their holds taken)."""
    trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                           ids=SequentialIds("seed"))
    try:
        accounts = {}
        for owner in owners:
            account = trading.open_account(owner_id=owner, exchange="paper",
                                           quote_asset="USDT")
            trading.deposit(account, "USDT", Decimal("10000"), actor=owner)
            RiskLimits(trading).set_limits(owner, LIMITS, actor=owner)
            accounts[owner] = str(account)
        return accounts
    finally:
        trading.close()


def test_a_kept_hold_stops_its_users_positions_and_not_its_bucket_mates(postgres_url,
                                                                        monkeypatch):
    monkeypatch.setattr(exposure_stamps, "HOLD_WAIT_SECONDS", 1)  # (10 s by default)
    mate = bucket_mate(HELD)
    accounts = _accounts(postgres_url, [HELD, mate])
    stuck, api = ApiProcess(postgres_url, "stuck"), ApiProcess(postgres_url, "api")
    try:
        positions = positions_of(api)
        api.paper.on_candle("BTC/USDT", 0, *(Decimal("90000"),) * 4, api.trading.clock.now())

        def open_for(owner: str):
            return positions.open_position(owner, exchange_account_id=accounts[owner],
                                           pair="BTC/USDT", quote_amount=QUOTE)

        with stuck.risk.holds.stamps.hold(HELD):  # kept on the stuck process's connection
            open_for(mate)  # no wait: before, lock_not_available after HOLD_WAIT_SECONDS
            with pytest.raises(RiskLimitError):  # (B's limit still judged under a hold)
                open_for(mate)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                open_for(HELD)
            assert positions.index.open_of(HELD) == []  # nothing written
        open_for(HELD)  # let go: opens
        assert [len(positions.index.open_of(o)) for o in (HELD, mate)] == [1, 1]
    finally:
        stuck.close()
        api.close()


def test_two_engine_appends_at_once_neither_wait_nor_lock_every_user(postgres_url):
    """The second of two appends in flight, both judged on the same 1,000 users, takes a
    key of each bucket as the first did, not each user's own key (10,000 users' keys
    would fill a server's lock table of default settings: "out of shared memory")."""
    env = parse_database_url(postgres_url).env
    schema, kwargs = env["POSTGRES_SCHEMA"], _connect_kwargs(env)
    owners = [f"user-{n}" for n in range(1000)]
    buckets = len({lock_keys(schema, o) for o in owners})
    with psycopg.connect(**kwargs) as one, psycopg.connect(**kwargs) as two:
        for conn in (one, two):
            conn.execute("SET lock_timeout = '1s'")  # (a wait fails the test at once)
            _wait_for_holds(conn.cursor(), schema, owners)  # (in its open transaction)
        locks = [conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                              "AND locktype = 'advisory'").fetchone()[0] for conn in (one, two)]
    assert locks == [buckets, buckets]
