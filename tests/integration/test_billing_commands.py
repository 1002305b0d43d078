"""``tradetape plans``, ``subscriptions sweep`` and ``billing report`` as an operator runs
them: plans listed, created and versioned; bad input refused with exit 2 and its code."""

from __future__ import annotations

import json

import pytest

from api.cli import main


@pytest.fixture
def database(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'billing.sqlite'}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_default_plans_are_listed_and_a_change_is_a_new_version(capsys, database):
    code, out, _ = run(capsys, "plans", "list", "--json", "--database", database)
    assert code == 0
    assert [(p["code"], p["price"], p["max_bots"]) for p in json.loads(out)] == [
        ("FREE", "0.00", 1), ("PRO", "10.00", 5)]
    code, out, _ = run(capsys, "plans", "update", "PRO", "--stripe-price", "price_abc",
                       "--max-bots", "6", "--actor", "ops", "--database", database)
    assert code == 0 and "plan PRO version 2" in out
    code, out, _ = run(capsys, "plans", "create", "TEAM", "--name", "Team", "--price",
                       "30.00", "--max-bots", "20", "--feature", "webhooks", "--actor", "ops",
                       "--database", database)
    assert code == 0
    plans = {p["code"]: p for p in json.loads(
        run(capsys, "plans", "list", "--json", "--database", database)[1])}
    assert plans["PRO"]["stripe_price"] == "price_abc" and plans["PRO"]["version"] == 2
    assert plans["TEAM"]["features"] == ["webhooks"]


@pytest.mark.parametrize(("argv", "code_named"), [
    (["plans", "create", "CHEAP", "--name", "Cheap", "--price", "1.001"], "INVALID_AMOUNT"),
    (["plans", "create", "lower", "--name", "x", "--price", "1"], "INVALID_PLAN"),
    (["plans", "create", "PRO", "--name", "Again", "--price", "1"], "PLAN_EXISTS"),
    (["plans", "update", "NOPE", "--price", "1"], "NOT_FOUND"),
    (["plans", "update", "PRO", "--max-bots", "-1"], "INVALID_PLAN"),
    (["billing", "report", "--month", "2026-13"], "INVALID_MONTH"),
])
def test_bad_input_is_refused_naming_its_code(capsys, database, argv, code_named):
    extra = ["--actor", "ops"] if argv[0] == "plans" else []
    code, out, err = run(capsys, *argv, *extra, "--database", database)
    assert code == 2 and code_named in err and "Traceback" not in err, (out, err)


def test_the_sweep_and_the_report_run_on_an_empty_store(capsys, database):
    assert run(capsys, "subscriptions", "sweep", "--database", database)[1].startswith(
        "0 subscription(s) expired")
    run(capsys, "projections", "rebuild", "billing_ledger", "--database", database)
    code, out, _ = run(capsys, "billing", "report", "--month", "2026-11", "--json",
                       "--database", database)
    assert code == 0 and json.loads(out)["currencies"] == {}


def test_a_pro_without_a_stripe_price_takes_the_setting_later(capsys, database, monkeypatch):
    run(capsys, "plans", "list", "--database", database)
    monkeypatch.setenv("TRADETAPE_STRIPE_PRICE_PRO", "price_later")
    plans = {p["code"]: p for p in json.loads(
        run(capsys, "plans", "list", "--json", "--database", database)[1])}
    assert (plans["PRO"]["stripe_price"], plans["PRO"]["version"]) == ("price_later", 2)
    monkeypatch.setenv("TRADETAPE_STRIPE_PRICE_PRO", "price_other")  # set once, then kept
    again = json.loads(run(capsys, "plans", "list", "--json", "--database", database)[1])
    assert again[1]["stripe_price"] == "price_later"
