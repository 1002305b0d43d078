"""Restarting the server mid-deal: SIGTERM while a bot has an open deal with resting safety
orders, start again on the same database, and the bot carries on: the same deal is still
open, then closes, the next one opens, and no order was placed twice (checked on the stored
events themselves, not on a read model)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import pytest

from application.bootstrap import open_trading
from application.replay import read_log
from domain.bots import Bot
from domain.orders import Order
from tests.e2e.conftest import (
    BOT,
    CONFIG,
    DEAL,
    DEAL_WAIT,
    create_bot,
    new_user,
    projection_lag,
    start_bot,
    wait_for,
)

pytestmark = pytest.mark.timeout(150)


def _topic(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclass(frozen=True)
class Submitted:
    position: int  # in the log
    order_id: UUID
    deal_id: UUID | None
    side: str
    purpose: str
    safety_order: int


@dataclass
class Stored:
    """What the store holds about a bot while no server runs."""

    head: int
    bot_status: str
    open_deal_id: UUID | None
    deal_version: int | None
    resting_buys: list[UUID]
    submitted: list[Submitted]
    deal_lifecycle: list[str]  # the bot's DealStarted / DealFinished, in order


def stored(database_url: str, bot_id: str) -> Stored:
    trading = open_trading(database_url)
    try:
        submitted = []
        for n in read_log(trading, [_topic(Order.Submitted)]):
            event = trading.mapper.to_domain_event(n)
            submitted.append(Submitted(n.id, event.originator_id, event.deal_id,
                                       str(event.side.value), str(event.purpose.value),
                                       event.safety_order))
        bot = trading.get_bot(UUID(bot_id))
        deal = None if bot.open_deal_id is None else trading.get_deal(bot.open_deal_id)
        resting = [s.order_id for s in submitted
                   if deal is not None and s.deal_id == deal.id and s.side == "buy"
                   and trading.load(s.order_id, Order).is_open]
        lifecycle = [type(e).__name__ for e in trading.events.get(bot.id)
                     if isinstance(e, Bot.DealStarted | Bot.DealFinished)]
        return Stored(trading.recorder.max_notification_id() or 0, bot.status.value,
                      bot.open_deal_id, None if deal is None else deal.version, resting,
                      submitted, lifecycle)
    finally:
        trading.close()


def test_restart_mid_deal_resumes_the_bot_without_duplicated_orders(launch):
    server = launch()
    token = new_user(server, "restart@example.com")
    bot_id = create_bot(server, token, "survivor")
    start_bot(server, token, bot_id)

    # Stop while the bot's deal is open with a safety order still resting on the venue (a
    # restart that forgot it would place it again).
    for _attempt in range(5):
        wait_for("an open deal with an unused safety order", lambda: (
            (bot := server.gql(BOT, {"id": bot_id}, token)["bot"])["openDeal"]
            and bot["openDeal"]["safetyOrdersUsed"] < CONFIG["maxSafetyOrders"]),
            every=0.05)
        server.stop()
        before = stored(server.database_url, bot_id)
        if before.resting_buys:
            break
        server.start()  # a safety order filled in between: once more
    else:
        pytest.fail("never stopped with a resting safety order")
    assert before.bot_status == "running" and before.open_deal_id is not None
    assert projection_lag(server.database_url) == dict.fromkeys(
        ("audit", "balances", "pnl", "leaderboard", "frontend", "wallet", "billing_ledger",
         "equity", "backtests", "paper_book"), 0), "not flushed on stop"
    deal_id = str(before.open_deal_id)

    server.start()  # same database, new process
    restarted_at = time.monotonic()
    bot = server.gql(BOT, {"id": bot_id}, token)["bot"]
    assert bot["status"] == "RUNNING"
    assert bot["openDealId"] == deal_id or server.gql(
        DEAL, {"id": deal_id}, token)["deal"]["status"] == "CLOSED"  # closed at once

    # The same deal carries on and closes; then the bot opens its next deal.
    deal = wait_for(f"deal {deal_id} closes after the restart", lambda: (
        (d := server.gql(DEAL, {"id": deal_id}, token)["deal"])["status"] == "CLOSED" and d))
    assert deal["closeReason"] in ("take_profit", "stop_loss"), deal
    # ... with every order it had, resting ones included, brought to an end: a resumed
    # engine that lost its orders would leave them open (and miss their fills).
    assert {o["status"] for o in deal["orders"]} <= {"filled", "cancelled"}, deal["orders"]
    restored = {str(order_id) for order_id in before.resting_buys}
    assert restored <= {o["id"] for o in deal["orders"]}
    fills = {f["orderId"] for f in deal["fills"]}
    assert all((o["status"] == "filled") == (o["id"] in fills) for o in deal["orders"]), deal
    wait_for("the next deal opens", lambda: (
        (b := server.gql(BOT, {"id": bot_id}, token)["bot"])["openDealId"] not in (None, deal_id)
        and b))
    assert time.monotonic() - restarted_at < DEAL_WAIT
    server.stop()

    after = stored(server.database_url, bot_id)
    assert after.head > before.head
    resumed = [s for s in after.submitted if s.position > before.head]
    # After the restart the resumed deal only got its exit order: every buy it needed was
    # placed before (and resting orders were restored, not placed again).
    assert [(s.side, s.purpose) for s in resumed if str(s.deal_id) == deal_id] == [
        ("sell", deal["closeReason"])], resumed
    # No order was ever placed twice: one per deal, side, purpose and safety order number.
    keys = Counter((s.deal_id, s.side, s.purpose, s.safety_order) for s in after.submitted)
    assert [k for k, n in keys.items() if n > 1] == []
    # One deal at a time: the bot's deals started and finished in turn, across the restart.
    lifecycle = after.deal_lifecycle
    assert lifecycle[::2] == ["DealStarted"] * len(lifecycle[::2])
    assert lifecycle[1::2] == ["DealFinished"] * len(lifecycle[1::2])
    # The resumed deal's orders are the ones the API shows, placed once each.
    placed = {str(s.order_id) for s in after.submitted if str(s.deal_id) == deal_id}
    assert placed == {o["id"] for o in deal["orders"]}
