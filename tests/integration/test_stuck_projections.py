"""Security finding 1 of issue 10: one stored event must not stop every read model for good.

An event already in the log with a NUL in a text (stored before text inputs were checked)
is projected on PostgreSQL and SQLite alike; a projection that cannot advance (an event it
cannot apply, a table gone) is stuck alone, named with its position and error, retried
later, while every other projection reaches the head."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds
from api.cli import main
from application.bootstrap import open_trading
from domain.accounts import ExchangeAccount
from projections.audit import AuditLog, verify
from projections.balances import Balances
from projections.frontend import FE_BOTS
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.supervisor import SupervisedProjections
from tests.projection_stubs import a_day_of_trading, dump, stored_bot_named, view_store

POISON = "a\x00b \u2400 c"  # a NUL, and the escape character itself


def stored_overflowing_deposits(app) -> int:
    """Two deposits whose sum no Decimal holds (stored without the command's bounds), so
    the balances projection cannot apply the second; returns that event's position."""
    account = app.get_account(app.open_account(owner_id="bob", exchange="paper",
                                               quote_asset="USDT"))
    for _ in range(2):
        account._record(ExchangeAccount.Deposited, app.cause("bob"), asset="USDT",
                        amount=Decimal("9e999999"))
    app.save_all(account)
    return app.recorder.max_notification_id()


@pytest.fixture
def app(persistent_store_url):
    trading = open_trading(persistent_store_url, ids=SequentialIds("stuck"))
    yield trading
    trading.close()


@pytest.fixture
def store(persistent_store_url):
    views = view_store(persistent_store_url)
    yield views
    views.close()


def test_an_event_with_a_nul_is_projected_and_rebuilt(app, store, persistent_store_url,
                                                      capsys):
    bot = stored_bot_named(app, POISON)
    a_day_of_trading(app)
    head = app.recorder.max_notification_id()

    assert main(["projections", "run", "--once", "--database", persistent_store_url]) == 0
    assert {row.position for row in store.tracking().values()} == {head}
    [row] = store.select(FE_BOTS, "bot_id = ?", (str(bot.id),))
    assert row["name"] == POISON  # read back as the event holds it
    incremental = dump(store)

    assert main(["projections", "rebuild", "--database", persistent_store_url]) == 0
    assert dump(store) == incremental
    assert verify(app, store, head).intact
    assert main(["audit", "verify", "--database", persistent_store_url]) == 0
    capsys.readouterr()


# The read models that sum deposits per asset: an overflowing deposit stops both, and only
# them (the paper runner's restart book keeps what each account was given, as balances do).
SUMMING_DEPOSITS = {"balances", "paper_book"}


def test_a_projection_that_cannot_apply_an_event_is_stuck_alone(app, store):
    a_day_of_trading(app)
    poison = stored_overflowing_deposits(app)
    stored_bot_named(app, "after the poison")
    head = app.recorder.max_notification_id()

    projections = SupervisedProjections(app, store, list(PROJECTIONS.values()),
                                        batch_size=500)
    projections.start()
    projections.catch_up()

    problems = projections.problems()
    assert {stuck["name"] for stuck in problems} == SUMMING_DEPOSITS
    for stuck in problems:
        assert stuck["failing_position"] == poison
        assert stuck["position"] == poison - 1  # everything before it applied
        assert stuck["error"].startswith("Overflow")
    positions = projections.positions()
    for name in SUMMING_DEPOSITS:
        assert positions.pop(name) == poison - 1
        assert projections.lag()[name] == head - poison + 1
    assert set(positions.values()) == {head}


def test_a_stuck_projection_is_retried_with_backoff_and_rejoins(app, store,
                                                               persistent_store_url, capsys):
    a_day_of_trading(app)
    store_view = SupervisedProjections(app, store, list(PROJECTIONS.values()))
    store_view.start()
    with store.transaction() as cur:  # damage one projection's table
        store.execute(cur, f"DROP TABLE {store.q('audit_log')}")
    stored_bot_named(app, "while audit is stuck")
    head = app.recorder.max_notification_id()
    now = [1000.0]
    projections = SupervisedProjections(app, store, list(PROJECTIONS.values()),
                                        clock=lambda: now[0])
    projections.start()
    projections.catch_up()
    [stuck] = projections.problems()
    assert stuck["name"] == "audit" and stuck["next_retry_in_s"] == 1.0
    assert "audit_log" in stuck["error"]
    assert {n: p for n, p in projections.positions().items() if n != "audit"} == {
        n: head for n in PROJECTIONS if n != "audit"}

    status = _status(persistent_store_url, capsys)
    assert status["audit"]["state"] == "stuck" and "audit_log" in status["audit"]["error"]
    assert status["audit"]["position"] == stuck["position"]
    assert status["frontend"]["state"] == "ok" and status["frontend"]["lag"] == 0

    now[0] += 1
    projections.catch_up()  # due: tried again, fails again, waits twice as long
    [again] = projections.problems()
    assert again["attempts"] == 2 and again["next_retry_in_s"] == 2.0

    rebuild(app, store, [AuditLog])  # an operator repairs it
    now[0] += 2
    projections.catch_up()
    assert projections.problems() == []
    assert set(projections.positions().values()) == {head}
    assert _status(persistent_store_url, capsys)["audit"]["state"] == "ok"


def test_projections_run_advances_the_others_and_names_the_stuck_one(app, store,
                                                                    persistent_store_url,
                                                                    capsys):
    a_day_of_trading(app)
    poison = stored_overflowing_deposits(app)
    head = app.recorder.max_notification_id()

    assert main(["projections", "run", "--once", "--database", persistent_store_url]) == 1
    err = capsys.readouterr().err
    for name in SUMMING_DEPOSITS:
        assert f"PROJECTION_STUCK: {name} cannot advance past position {poison - 1}" in err
    assert "Traceback" not in err
    positions = {name: row.position for name, row in store.tracking().items()}
    for name in SUMMING_DEPOSITS:
        assert positions.pop(name) == poison - 1
    assert set(positions.values()) == {head}


def test_a_view_that_cannot_be_rebuilt_at_start_is_reported_not_fatal(app, store):
    a_day_of_trading(app)
    stored_overflowing_deposits(app)
    SupervisedProjections(app, store, list(PROJECTIONS.values())).start()
    with store.transaction() as cur:  # as if an older version had made the balances view
        store.execute(cur, f"UPDATE {store.q('projection_tracking')} SET schema_hash = "
                           "'older' WHERE name = 'balances'")
    reports: list[str] = []
    projections = SupervisedProjections(app, store, list(PROJECTIONS.values()),
                                        report=reports.append)
    projections.start()
    projections.catch_up()
    stuck = {problem["name"]: problem for problem in projections.problems()}
    assert stuck.keys() == SUMMING_DEPOSITS  # paper_book: stuck at the poison, as before
    assert stuck["balances"]["needs_rebuild"] is True
    assert "rebuilding: balances" in reports[0]
    head = app.recorder.max_notification_id()
    assert {n: p for n, p in projections.positions().items() if n not in stuck} == {
        n: head for n in PROJECTIONS if n not in stuck}
    assert Balances.name not in [c.name for c in projections.healthy()]


def _status(url: str, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["projections", "status", "--json", "--database", url]) == 0
    rows = json.loads(capsys.readouterr().out)["projections"]
    return {row["name"]: row for row in rows}
