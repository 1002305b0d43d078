"""``tradetape events``: an aggregate's history and its state at a time or version, from a
SQLite store filled through the application with a clock that steps one minute a reading."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from domain.orders import Order, OrderSide, OrderType
from tests.integration.conftest import CONFIG, EDITED, T0

# Rich markup in a stored value must be printed as it is, not interpreted.
BOT_NAME = "[bold]BTC[/bold] ladder"


@pytest.fixture
def store(tmp_path) -> dict[str, str]:
    """Bot: created 12:00 (alice), started 12:01, paused 12:02 (bob), started 12:03,
    config edited 12:04. Order: submitted 12:05, accepted and part filled 12:06."""
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    app = open_trading(url, clock=SteppingClock(T0, timedelta(minutes=1)), ids=SequentialIds())
    try:
        bot_id = app.create_bot(
            owner_id="alice", name=BOT_NAME, config=CONFIG, exchange_account_id="acc-1"
        )
        app.start_bot(bot_id, actor="alice")
        app.pause_bot(bot_id, actor="bob")
        app.start_bot(bot_id)
        app.edit_bot_config(bot_id, EDITED, actor="alice")
        order = Order.submit(
            app.ids.new_id(),
            app.cause("alice", "req-42"),
            client_order_id="tt-1",
            owner_id="alice",
            exchange_account_id="acc-1",
            pair="BTC/USDT",
            side=OrderSide.BUY,
            type=OrderType.LIMIT,
            amount=Decimal("0.00250000"),
            price=Decimal("40000.10"),
        )
        fill = app.cause("engine", "step-7")
        order.accept(fill, "ex-1")
        order.fill(
            fill,
            trade_id="t-1",
            price=Decimal("40000.10"),
            amount=Decimal("0.00100000"),
            fee=Decimal("0.0000010"),
            fee_currency="BTC",
        )
        app.save_all(order)
    finally:
        app.close()
    return {"url": url, "bot": str(bot_id), "order": str(order.id)}


def events(capsys, store, *args: str) -> tuple[int, str, str]:
    code = main(["events", *args, "--database", store["url"]])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, store, *args: str) -> dict:
    code, out, err = events(capsys, store, *args, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


def state_cell(table_text: str, field: str) -> str:
    """The value in the state table's row for ``field``."""
    match = re.search(rf"│ {field}\s+│ (.+?)\s+│", table_text)
    assert match, f"no row {field!r} in:\n{table_text}"
    return match.group(1)


# --- a point in time ------------------------------------------------------------------------


def test_state_between_pause_and_restart_is_paused(capsys, store):
    code, out, err = events(capsys, store, store["bot"], "--as-of", "2024-03-01T12:02:30Z")

    assert (code, err) == (0, "")
    assert state_cell(out, "status") == "paused"
    assert "State at version 3 as of 2024-03-01T12:02:30+00:00" in out
    assert "Paused" in out and "bob" in out
    assert "12:03:00" not in out  # the restart after that time is not shown


def test_state_between_start_and_pause_is_running(capsys, store):
    report = as_json(capsys, store, store["bot"], "--as-of", "2024-03-01T12:01:30Z")

    assert report["state"]["status"] == "running"
    assert report["version"] == 2
    assert [e["type"] for e in report["events"]] == ["Created", "Started"]


def test_an_event_at_exactly_the_as_of_time_is_included(capsys, store):
    report = as_json(capsys, store, store["bot"], "--as-of", "2024-03-01T12:02:00Z")

    assert report["version"] == 3
    assert report["state"]["status"] == "paused"


@pytest.fixture
def local_zone_is_not_utc() -> Iterator[None]:
    """So that reading a zoneless time as local time, not UTC, would show."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("local_zone_is_not_utc")
@pytest.mark.parametrize(
    ("as_of", "version"),
    [
        ("2024-03-01T12:02:30", 3),  # no zone: UTC
        ("2024-03-01T14:02:30+02:00", 3),
        ("2024-03-01T12:02:30-01:00", 5),  # 13:02:30 UTC, after every bot event
    ],
)
def test_as_of_times_are_compared_in_utc(capsys, store, as_of, version):
    report = as_json(capsys, store, store["bot"], "--as-of", as_of)

    assert report["version"] == version


def test_as_of_before_the_aggregate_existed_is_not_found(capsys, store):
    code, out, err = events(capsys, store, store["bot"], "--as-of", "2024-03-01T11:59:59Z")

    assert code == 2 and out == ""
    assert err.startswith("error: NOT_FOUND: ")
    assert "did not exist yet" in err


# --- a version ------------------------------------------------------------------------------


def test_version_shows_the_state_after_that_event(capsys, store):
    code, out, _ = events(capsys, store, store["bot"], "--version", "2")

    assert code == 0
    assert state_cell(out, "status") == "running"
    assert state_cell(out, "config_version") == "1"
    assert "events 1-2 of 5" in out


def test_without_a_point_the_latest_state_is_shown(capsys, store):
    report = as_json(capsys, store, store["bot"])

    assert report["version"] == 5 and report["as_of"] is None
    assert report["state"]["status"] == "running"
    assert report["state"]["config"]["take_profit_pct"] == "2.50"
    assert report["state"]["config_version"] == 2


# --- what is shown --------------------------------------------------------------------------


def test_table_shows_who_did_what_and_stored_text_verbatim(capsys, store):
    code, out, _ = events(capsys, store, store["order"])

    assert code == 0
    assert re.search(r"│ 1 │ 2024-03-01T12:05:00\+00:00 │ Submitted\s+│ alice\s+│ req-42", out)
    assert re.search(r"│ 3 │ 2024-03-01T12:06:00\+00:00 │ Filled\s+│ engine\s+│ step-7", out)
    assert "price=40000.10" in out and "amount=0.00100000" in out
    assert state_cell(out, "status") == "partially_filled"

    _, out, _ = events(capsys, store, store["bot"])
    assert state_cell(out, "name") == BOT_NAME


def test_json_has_the_documented_shape_with_exact_values(capsys, store):
    report = as_json(capsys, store, store["bot"], "--version", "5")

    assert set(report) == {"aggregate_id", "aggregate_type", "version", "as_of", "events", "state"}
    assert report["aggregate_id"] == store["bot"]
    assert report["aggregate_type"] == "Bot"
    created = report["events"][0]
    assert set(created) == {"version", "timestamp", "type", "actor", "correlation_id", "data"}
    assert created["version"] == 1
    assert created["timestamp"] == "2024-03-01T12:00:00+00:00"
    assert created["actor"] == "alice"
    UUID(created["correlation_id"])
    assert created["data"]["mode"] == "paper"
    assert created["data"]["name"] == BOT_NAME
    assert created["data"]["config"] == {
        "pair": "BTC/USDT",
        "base_order_quote": "100.00",
        "safety_order_quote": "20.0",
        "max_safety_orders": 3,
        "price_deviation_pct": "1.50",
        "safety_volume_scale": "1.2300",
        "safety_step_scale": "1",
        "take_profit_pct": "1.0",
        "stop_loss_pct": "10.000",
        "trailing_take_profit_pct": None,
        "cooldown_seconds": 0,
    }
    assert [(e["version"], e["type"], e["actor"]) for e in report["events"]] == [
        (1, "Created", "alice"),
        (2, "Started", "alice"),
        (3, "Paused", "bob"),
        (4, "Started", "system"),
        (5, "ConfigEdited", "alice"),
    ]
    assert report["events"][3]["data"] == {}
    assert report["state"]["stage"] == "paper_training"
    assert report["state"]["paper_started_at"] == "2024-03-01T12:01:00+00:00"


def test_json_of_an_order_keeps_decimals_and_enums_as_text(capsys, store):
    report = as_json(capsys, store, store["order"])

    assert report["aggregate_type"] == "Order"
    fill = report["events"][2]
    assert (fill["type"], fill["correlation_id"]) == ("Filled", "step-7")
    assert fill["data"] == {
        "trade_id": "t-1",
        "price": "40000.10",
        "amount": "0.00100000",
        "fee": "0.0000010",
        "fee_currency": "BTC",
    }
    state = report["state"]
    assert (state["side"], state["type"], state["purpose"]) == ("buy", "limit", "manual")
    assert (state["amount"], state["filled"]) == ("0.00250000", "0.00100000")
    assert state["trade_ids"] == ["t-1"]
    assert state["bot_id"] is None


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aggregate_id", ["not-an-id", "00000000-0000-4000-8000-000000000000"], ids=["bad", "unknown"]
)
def test_an_unknown_or_malformed_id_is_not_found(capsys, store, aggregate_id):
    code, out, err = events(capsys, store, aggregate_id)

    assert code == 2 and out == ""
    assert err.startswith("error: NOT_FOUND: ")
    assert "Traceback" not in err


def test_a_bad_as_of_time_is_invalid_time(capsys, store):
    code, out, err = events(capsys, store, store["bot"], "--as-of", "yesterday")

    assert code == 2 and out == ""
    assert err.startswith("error: INVALID_TIME: ")


def test_a_version_past_the_last_event_is_not_found(capsys, store):
    code, _, err = events(capsys, store, store["bot"], "--version", "6")

    assert code == 2
    assert err.startswith("error: NOT_FOUND: ") and "5 events" in err


@pytest.mark.parametrize(
    "extra", [["--version", "0"], ["--version", "2", "--as-of", "2024-03-01T12:00:00Z"]]
)
def test_bad_option_combinations_are_usage_errors(capsys, store, extra):
    with pytest.raises(SystemExit) as exit_:
        main(["events", store["bot"], *extra, "--database", store["url"]])

    assert exit_.value.code == 2


def test_a_bad_database_url_is_reported(capsys, store):
    code = main(["events", store["bot"], "--database", "mysql://db/trades"])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: INVALID_DATABASE_URL")
