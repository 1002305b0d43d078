"""The parts of the read models that need no database: facts read like the mapper's events,
audit summaries, a batch's row changes, and the tally arithmetic behind pnl and leaderboard."""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal
from string import Formatter
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from domain.bots import Bot
from projections.facts import FactDecoder
from projections.summaries import TEMPLATES, plain, summarize
from projections.tables import Changes, table
from projections.tallies import close_into, derive, new_tally
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, saw_levels

ROWS = table("rows", key=("id",), id="text", amount="money", count="int")


@pytest.fixture(scope="module")
def log():
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("app"))
    a_day_of_trading(app)
    backtest(app, candle_rows(saw_levels(2)), seed="parts")
    yield app, app.recorder.select_notifications(start=None, limit=10_000)
    app.close()


def test_every_fact_reads_the_values_the_mapper_decodes(log):
    app, notifications = log
    decode = FactDecoder(app.mapper)
    kinds = set()
    for n in notifications:
        event = app.mapper.to_domain_event(n)
        fact = decode((n.id, str(n.originator_id), n.originator_version, n.topic, n.state))
        kinds.add(fact.kind)
        assert fact.oid == str(event.originator_id)
        assert fact.time == event.timestamp
        assert (fact.actor, fact.correlation_id) == (event.actor, event.correlation_id)
        for name, value in vars(event).items():
            if isinstance(value, Decimal):
                assert str(fact.dec(name)) == str(value)
            elif isinstance(value, UUID) and name not in ("originator_id",):
                assert fact.id_text(name) == str(value)
            elif hasattr(value, "value") and not isinstance(value, Decimal | str | int):
                assert fact.value(name) == value.value
            elif isinstance(value, str | int | bool) and name in fact.state:
                assert fact.text(name) == value
    assert {"Order.Filled", "Deal.Closed", "ExchangeAccount.BalanceObserved",
            "Bot.LeaderboardOptedIn"} <= kinds


def test_an_event_stored_in_an_older_shape_is_read_upcast(log):
    app, notifications = log
    created = next(n for n in notifications if n.topic == "domain.bots:Bot.Created")
    state = json.loads(created.state)
    del state["mode"], state["class_version"]  # how version 1 was stored
    old = Notification(id=created.id, originator_id=created.originator_id,
                       originator_version=1, topic=created.topic,
                       state=json.dumps(state).encode())

    fact = FactDecoder(app.mapper)((old.id, str(old.originator_id), 1, old.topic, old.state))

    assert fact.value("mode") == "paper"
    assert fact.stored == old.state  # the audit hashes what is stored, not the upcast


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_summary_names_fields_its_event_has(kind):
    module = {"Bot": "bots", "Deal": "deals", "Order": "orders", "ExchangeAccount": "accounts",
              "BacktestRun": "backtests", "TradingSwitch": "system",
              "AuditCheckpoint": "audit", "AuditRechain": "audit", "Webhook": "webhooks",
              "EmergencyExitRun": "emergency_exits",
              "BacktestRequest": "backtest_requests", "BotRoster": "rosters"}[
        kind.partition(".")[0]]
    event = resolve_topic(f"domain.{module}:{kind}")
    names = {f.name for f in fields(event)}
    wanted = {f for _, f, _, _ in Formatter().parse(TEMPLATES[kind]) if f}
    assert wanted <= names


def test_summaries_show_stored_values_and_never_secrets():
    state = {"amount": {"_type_": "decimal_str", "_data_": "0.00250000"},
             "price": {"_type_": "decimal_str", "_data_": "40000.10"}, "fee": None,
             "fee_currency": "USDT", "trade_id": "t-1"}
    assert summarize("Order.Filled", state) == \
        "filled 0.00250000 @ 40000.10, fee - USDT (trade t-1)"
    rotated = {"timestamp": {}, "actor": "alice", "api_secret": "s3cr3t", "api_key": "k",
               "sealed_email": "x", "venue": "kraken"}
    summary = summarize("ExchangeAccount.KeysRotated", rotated)
    assert summary == ("KeysRotated: api_secret=[redacted], api_key=[redacted], "
                       "sealed_email=[redacted], venue=kraken")
    assert plain({"nested": {"password_hash": "h", "ok": 1}}) == {
        "nested": {"password_hash": "[redacted]", "ok": 1}}


def test_summaries_of_events_missing_fields_or_types_show_a_dash_or_the_stored_data():
    """An event stored before a field existed (or by another tool) lacks it; a typed value
    may lack its type. The summary shows ``-`` for what is missing, the data as stored."""
    no_fee_currency = {"amount": {"_type_": "decimal_str", "_data_": "1"},
                       "price": {"_data_": "2.50"}, "fee": {"_type_": "decimal_str"},
                       "trade_id": "t-2"}
    assert summarize("Order.Filled", no_fee_currency) == \
        "filled 1 @ 2.50, fee - - (trade t-2)"
    assert summarize("Bot.DealStarted", {}) == "deal - started"
    started = {"deal_id": {"_type_": "uuid_hex", "_data_": "94c84058278d58b0ba97ebd4917c1450"}}
    assert summarize("Bot.DealStarted", started) == \
        "deal 94c84058-278d-58b0-ba97-ebd4917c1450 started"


def test_a_row_inserted_and_deleted_in_one_batch_is_never_written():
    changes = Changes([ROWS])
    changes.insert(ROWS, {"id": "a", "amount": Decimal("1.50"), "count": 1})
    changes.insert(ROWS, {"id": "b", "amount": Decimal("2"), "count": 1})
    changes.upsert(ROWS, {"id": "b", "amount": Decimal("2.0"), "count": 2})
    changes.upsert(ROWS, {"id": "c", "amount": None, "count": 3})
    changes.delete(ROWS, ("a",))
    changes.delete(ROWS, ("d",))

    [frozen] = changes.freeze()

    assert frozen.inserts == [("b", "2.0", 2)]  # still new: inserted, with its last values
    assert frozen.upserts == [("c", None, 3)]
    assert frozen.gone == [("d",)]


def test_frozen_changes_keep_the_values_of_their_batch():
    changes = Changes([ROWS])
    row = {"id": "a", "amount": Decimal(1), "count": 1}
    changes.upsert(ROWS, row)
    [frozen] = changes.freeze()
    row["amount"] += 1  # the next batch, while this one is being written
    assert frozen.upserts == [("a", "1", 1)]


def test_drawdown_is_from_the_running_peak_of_realized_pnl():
    tally = new_tally()
    tally["deals_open"] = 4
    for pnl in ("10", "-4", "-3", "2"):
        close_into(tally, Decimal(pnl))
    tally["capital_max"] = Decimal(50)

    derive(tally)

    assert tally["realized_pnl"] == Decimal(5)
    assert tally["max_drawdown"] == Decimal(7)
    assert (tally["wins"], tally["losses"], tally["deals_open"]) == (2, 2, 0)
    assert tally["win_rate"] == Decimal("0.5")
    assert tally["profit_factor"] == Decimal(12) / Decimal(7)
    assert tally["roi"] == Decimal("0.1")


def test_without_losses_or_deals_the_ratios_are_undefined_not_zero():
    tally = new_tally()
    derive(tally)
    assert (tally["win_rate"], tally["profit_factor"], tally["roi"]) == (None, None, None)


def test_leaderboard_opt_in_is_the_owners_decision():
    from domain.errors import DomainError
    from tests.stubs import a_bot, a_cause

    bot = a_bot()
    with pytest.raises(DomainError) as refused:
        bot.set_leaderboard_opt_in(a_cause(1, actor="mallory"), True)
    assert refused.value.code == "NOT_OWNER"
    bot.set_leaderboard_opt_in(a_cause(1), True)
    bot.set_leaderboard_opt_in(a_cause(2), True)  # already listed: nothing recorded
    assert [type(e).__name__ for e in bot.collect_events()] == ["Created",
                                                                "LeaderboardOptedIn"]
    assert isinstance(bot, Bot) and bot.leaderboard_opt_in
