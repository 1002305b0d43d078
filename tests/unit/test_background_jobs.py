"""Two background helpers of the API, with the work they are given: a projection rebuild
refuses a second while one is under way and says how the first ended; market precision is
asked of the exchange once, but an answer of "none" (maybe an exchange away) again later."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds
from application.market_precision import MarketPrecision
from application.projection_rebuilds import ProjectionRebuilds
from domain.errors import DomainError
from domain.ports import MarketRules

NAMES = ["audit", "pnl", "frontend"]


def known(names):
    unknown = [n for n in names or [] if n not in NAMES]
    if unknown:
        raise DomainError(f"no projection {unknown[0]}", code="UNKNOWN_PROJECTION")
    return list(names or NAMES)


def ended(rebuilds, state, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while state.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.01)
    return state


def test_a_second_rebuild_waits_for_the_first_to_end():
    release = threading.Event()

    def rebuild(names, on_progress):
        on_progress(40, 100)
        release.wait(10)
        return 100

    rebuilds = ProjectionRebuilds(rebuild, known, SequentialIds("t"))
    first = rebuilds.submit("admin", ["pnl"])
    with pytest.raises(DomainError) as refused:
        rebuilds.submit("admin", None)
    release.set()
    done = ended(rebuilds, first)
    again = ended(rebuilds, rebuilds.submit("admin", None))
    rebuilds.close()

    assert refused.value.code == "REBUILD_RUNNING"
    assert (done.status, done.position, done.head, done.rebuilt_to) == ("completed", 100,
                                                                         100, 100)
    assert again.names == NAMES and again.status == "completed"


def test_a_failed_rebuild_says_its_code_and_the_next_may_start():
    def rebuild(names, on_progress):
        raise DomainError("the audit chain disagrees at 7", code="AUDIT_CHAIN_DISAGREES")

    rebuilds = ProjectionRebuilds(rebuild, known, SequentialIds("t"))
    failed = ended(rebuilds, rebuilds.submit("admin", ["audit"]))
    with pytest.raises(DomainError) as unknown:
        rebuilds.submit("admin", ["nosuch"])
    rebuilds.close()

    assert (failed.status, failed.error_code) == ("failed", "AUDIT_CHAIN_DISAGREES")
    assert unknown.value.code == "UNKNOWN_PROJECTION"


def test_a_rebuild_under_way_stops_at_its_next_batch_when_the_server_stops():
    batches = []
    started = threading.Event()

    def rebuild(names, on_progress):
        for position in range(1, 1_000_000):  # a long log
            started.set()
            on_progress(position, 1_000_000)
            batches.append(position)
            time.sleep(0.001)
        return 1_000_000

    rebuilds = ProjectionRebuilds(rebuild, known, SequentialIds("t"))
    state = rebuilds.submit("admin", None)
    started.wait(10)
    rebuilds.close()

    assert (state.status, state.error_code) == ("failed", "SERVER_STOPPING")
    assert len(batches) < 1_000_000 - 1 and state.rebuilt_to is None


def test_market_rules_are_asked_once_and_none_again_after_a_minute():
    asked: list[tuple[str, str]] = []
    answers = {"live": MarketRules(Decimal("0.00001"), Decimal("0.01"), None, None)}
    away = {"flaky"}
    now = [0.0]

    def rules_of(account, pair):
        asked.append((account, pair))
        return None if account in away else answers.get(account)

    precision = MarketPrecision(rules_of, monotonic=lambda: now[0])
    for _ in range(3):
        assert precision.rules("live", "BTC/USDT").amount_step == Decimal("0.00001")
        assert precision.rules("flaky", "BTC/USDT") is None
    assert precision.remembered("live", "BTC/USDT") == (True, answers["live"])
    now[0] = 61.0
    away.clear()
    answers["flaky"] = answers["live"]

    assert precision.remembered("flaky", "BTC/USDT") == (False, None)
    assert precision.rules("flaky", "BTC/USDT") == answers["live"]
    assert asked == [("live", "BTC/USDT"), ("flaky", "BTC/USDT"), ("flaky", "BTC/USDT")]
