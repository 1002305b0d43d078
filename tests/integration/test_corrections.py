"""Corrections without rewriting history: a bot paper-traded at 0.1% whose venue really
charged 0.25% gets its fees corrected. The fills stay as recorded; P/L and balances change
from the correction on, equal to what the fills give at the corrected rate; the views before
it still show what was believed then; a rebuild gives what the incremental views gave."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.corrections import correct_fees
from application.paper_trading import PaperTrading
from application.replay import read_log
from domain.deals import Deal
from domain.errors import DomainError
from projections.balances import Balances
from projections.pnl import Pnl
from projections.portfolio import pnl_by_deal
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import view_as_of
from tests.projection_stubs import (
    CONFIG,
    backtest,
    candle_rows,
    catch_up,
    dump,
    one,
    saw_levels,
    view_store,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHARGED = Decimal("0.0025")  # what the venue really charged; the bot recorded 0.001


class World:
    def __init__(self, url: str):
        self.url = url
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.app = open_trading(url, clock=self.clock, ids=SequentialIds("corrections"))
        self.account = self.app.open_account(owner_id="alice", exchange="paper",
                                             quote_asset="USDT")
        self.app.deposit(self.account, "USDT", Decimal("10000"), actor="alice")
        self.bot = self.app.create_bot(owner_id="alice", name="saw", config=CONFIG,
                                       exchange_account_id=str(self.account))
        self.app.start_bot(self.bot, actor="alice")
        runner = PaperTrading(self.app, self.app.ids, lambda pair, quote, base: PaperExchange(
            pair, quote_balance=quote, base_balance=base))
        runner.resume()
        # three saw cycles: deals close at their take profit, the last one stays open
        for ts, o, h, low, c in candle_rows([*saw_levels(3), "0.99"]):
            runner.on_candle("BTC/USDT", ts, o, h, low, c, self.clock.now())

    def deal_events(self) -> dict[str, list]:
        deals: dict[str, list] = {}
        for n in read_log(self.app):
            event = self.app.mapper.to_domain_event(n)
            if isinstance(event, Deal.Event):
                deals.setdefault(str(event.originator_id), []).append(event)
        return deals


def expected_at(rate: Decimal, events: list) -> tuple[Decimal, Decimal]:
    """A deal's fees and realized P/L worked out from its fills alone, at ``rate``, exactly
    (the engine's numbers round at 28 digits: they match these to ~1e-25)."""
    with localcontext() as exact:
        exact.prec = 80
        return _worked_out(rate, events)


def close_to(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) < Decimal("1e-20")


def _worked_out(rate: Decimal, events: list) -> tuple[Decimal, Decimal]:
    bought = sold = fees = Decimal(0)
    for e in events:
        if isinstance(e, Deal.BuyFilled | Deal.Closed):
            notional = e.price * e.amount
            fees += e.amount * e.price * rate
            if isinstance(e, Deal.BuyFilled):
                bought += notional
            else:
                sold += notional
    return fees, sold - bought - fees


@pytest.fixture
def world(persistent_store_url):
    world = World(persistent_store_url)
    yield world
    world.app.close()


def test_a_fee_correction_changes_pnl_and_balances_from_then_on(world, persistent_store_url):
    store = view_store(persistent_store_url)
    catch_up(world.app, store)
    believed = one(store, "pnl_bots", "bot_id = ?", (str(world.bot),))
    usdt_before = one(store, "balances", "asset = 'USDT'")["free"]
    head_before = world.app.recorder.max_notification_id()
    time.sleep(0.01)  # recorded times are kept to the millisecond
    moment_before = datetime.now(UTC)  # recorded time: --as-of's meaning
    time.sleep(0.01)

    result = correct_fees(world.app, world.bot, CHARGED, "venue charged 0.25%, not 0.1%",
                          "operator:carol")
    catch_up(world.app, store)

    deals = world.deal_events()
    closed = [d for d, events in deals.items()
              if any(isinstance(e, Deal.Closed) for e in events)]
    assert len(closed) >= 3 and len(deals) == len(closed) + 1
    assert len(result.deals) == len(deals)  # the open deal's buys too
    total_realized = Decimal(0)
    for deal_id in closed:
        fees, pnl = expected_at(CHARGED, deals[deal_id])
        row = one(store, "pnl_deals", "deal_id = ?", (deal_id,))
        assert close_to(row["fees"], fees) and close_to(row["realized_pnl"], pnl)
        assert one(store, "fe_deals", "deal_id = ?", (deal_id,))["realized_pnl"] == row[
            "realized_pnl"]
        total_realized += row["realized_pnl"]
    bot = one(store, "pnl_bots", "bot_id = ?", (str(world.bot),))
    assert bot["realized_pnl"] == total_realized < believed["realized_pnl"]
    assert bot["fees"] == believed["fees"] + result.total
    assert one(store, "balances", "asset = 'USDT'")["free"] == usdt_before - result.total
    # the open deal's buy fees are in its unrealized P/L
    open_deal = one(store, "pnl_deals", "status = 'open'")
    open_deal = pnl_by_deal(store, [open_deal["deal_id"]])[open_deal["deal_id"]]
    fees, _ = expected_at(CHARGED, deals[open_deal["deal_id"]])
    assert close_to(open_deal["buy_fees"], fees)
    assert open_deal["unrealized_pnl"] == (open_deal["units"] * open_deal["mark_price"]
                                           - open_deal["cost"] - open_deal["buy_fees"])

    # what was believed before the correction is still what a view of then shows
    then = view_as_of(world.app, [Pnl, Balances], moment_before)
    assert then.position == head_before
    assert one(then.store, "pnl_bots", "bot_id = ?", (str(world.bot),)) == believed
    assert one(then.store, "balances", "asset = 'USDT'")["free"] == usdt_before
    then.store.close()

    # a rebuild from the log gives what the incremental views gave, row for row
    incremental = dump(store)
    rebuild(world.app, store, list(PROJECTIONS.values()), batch_size=7)
    assert dump(store) == incremental
    store.close()


def test_the_fills_are_never_changed_and_the_correction_names_who_and_why(world):
    before = [(n.originator_id, n.originator_version, n.state) for n in read_log(world.app)]
    correct_fees(world.app, world.bot, CHARGED, "venue charged 0.25%", "operator:carol")
    after = [(n.originator_id, n.originator_version, n.state) for n in read_log(world.app)]
    assert after[:len(before)] == before
    corrections = [world.app.mapper.to_domain_event(n) for n in read_log(world.app)
                   if n.topic.endswith("Deal.FeesCorrected")]
    assert len(corrections) == len(world.deal_events())  # every deal paid fees
    assert {(c.actor, c.reason) for c in corrections} == {("operator:carol",
                                                           "venue charged 0.25%")}
    assert len({c.correlation_id for c in corrections}) == 1  # one act, one transaction
    assert all("0.0025" in c.rule for c in corrections)


def test_the_rate_the_venue_charged_finds_nothing_and_a_correction_is_not_applied_twice(world):
    recorded_rate = Decimal("0.001")  # the paper venue's default
    check = correct_fees(world.app, world.bot, recorded_rate, "check", "operator:carol",
                         dry_run=True)
    assert check.deals == [] and not check.recorded
    correct_fees(world.app, world.bot, CHARGED, "venue charged 0.25%", "operator:carol")
    with pytest.raises(DomainError) as refused:
        correct_fees(world.app, world.bot, CHARGED, "again", "operator:carol")
    assert refused.value.code == "NOTHING_TO_CORRECT"
    # back to the recorded rate: every deal's fees are the fees its fills recorded again
    undo = correct_fees(world.app, world.bot, recorded_rate, "wrong ticket", "operator:carol")
    assert undo.total < 0
    for deal_id, events in world.deal_events().items():
        deal = world.app.get_deal(UUID(deal_id))
        recorded = sum((e.fee for e in events if isinstance(e, Deal.BuyFilled | Deal.Closed)),
                       Decimal(0))
        assert deal.buy_fees + deal.sell_fees == recorded


def test_a_period_corrects_only_the_fills_inside_it(world):
    fills = [e for events in world.deal_events().values() for e in events
             if isinstance(e, Deal.BuyFilled | Deal.Closed)]
    times = sorted({f.timestamp for f in fills})
    since, until = times[2], times[-2]
    result = correct_fees(world.app, world.bot, CHARGED, "a week of wrong fees",
                          "operator:carol", since=since, until=until)
    corrected = [f for d in result.deals for f in d.fills]
    assert corrected and all(since <= f.at < until for f in corrected)
    assert len(corrected) == len([f for f in fills if since <= f.timestamp < until])


def test_a_correction_without_a_reason_or_of_a_backtest_is_refused(world):
    with pytest.raises(DomainError) as no_reason:
        correct_fees(world.app, world.bot, CHARGED, "  ", "operator:carol")
    assert no_reason.value.code == "REASON_REQUIRED"
    run = backtest(world.app, candle_rows(saw_levels(2)), seed="bt")
    with pytest.raises(DomainError) as backtest_refused:
        correct_fees(world.app, run.bot_id, CHARGED, "wrong fee", "operator:carol")
    assert backtest_refused.value.code == "BACKTEST_NOT_CORRECTABLE"
    assert not [n for n in read_log(world.app) if n.topic.endswith("FeesCorrected")]


def test_the_command_records_the_operator_and_prints_what_changed(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    world = World(url)
    world.app.close()
    command = [sys.executable, "-m", "api.cli", "corrections", "fees", "--bot",
               str(world.bot), "--fee-rate", "0.0025", "--reason", "venue statement #42",
               "--actor", "dave", "--database", url]
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, check=True)
    assert dry.stdout.startswith("would correct ")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.startswith("corrected ") and "5 deals" in done.stdout
    again = subprocess.run(command, check=False, capture_output=True, text=True)
    assert again.returncode != 0 and "NOTHING_TO_CORRECT" in again.stderr
    assert "Traceback" not in again.stderr
    app = open_trading(url)
    actors = {app.mapper.to_domain_event(n).actor for n in read_log(app)
              if n.topic.endswith("FeesCorrected")}
    app.close()
    assert actors == {"operator:dave"}


def test_every_projection_follows_a_correction(world, persistent_store_url):
    """Every registered view survives corrections in batches of any size."""
    correct_fees(world.app, world.bot, CHARGED, "venue charged 0.25%", "operator:carol")
    store = view_store(persistent_store_url)
    catch_up(world.app, store, batch_size=1)
    one_by_one = dump(store)
    rebuild(world.app, store, list(PROJECTIONS.values()), batch_size=10_000)
    assert dump(store) == one_by_one
    store.close()
