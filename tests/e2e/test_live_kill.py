"""The kill test of live trading: ``tradetape serve`` with ``TRADETAPE_FEED=ccxt:binance`` and
a sandbox account on the local Binance simulator (its own process, many times faster than
real time) runs a DCA bot through at least 100 deals while it is killed with SIGKILL at
random moments, at least 20 times, some of them while an order's request is held by the
exchange (between its submission and the exchange's answer), and restarted each time.

Then, read from the stored events and the simulator's own ledger (and every output):
- the account's keys appear in no server output and not in the database;
- no client order id reached the exchange twice;
- every trade the exchange made is in the log once, as the exchange made it;
- each closed deal's realized P/L equals what the exchange's ledger says its trades made,
  to the last digit.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from application.bootstrap import open_trading
from application.replay import read_log
from tests.e2e.conftest import BOT, new_user, wait_for
from tests.exchange_simulator import simulator_process

pytestmark = pytest.mark.timeout(900)

DEALS = 100
KILLS = 20
# Small targets so deals close within a few candles; one safety order so a deal also rests
# orders across kills.
CONFIG = {
    "pair": "BTC/USDT", "baseOrderQuote": "120", "safetyOrderQuote": "60",
    "maxSafetyOrders": 1, "priceDeviationPct": "0.05", "safetyVolumeScale": "1",
    "safetyStepScale": "1", "takeProfitPct": "0.05", "stopLossPct": "0.1",
}
ADD = """mutation($input: AddExchangeAccountInput!) {
  addExchangeAccount(input: $input) {
    __typename ... on ExchangeAccount { id sandbox } ... on AccountErrors { code message }
  }
}"""
CREATE = """mutation($name: String!, $config: DcaConfigInput!, $account: ID!) {
  createBot(name: $name, config: $config, exchangeAccountId: $account) {
    __typename ... on Bot { id mode } ... on BotErrors { code errors { code message } }
  }
}"""
START = """mutation($id: ID!) {
  startBot(id: $id) { __typename ... on Bot { id status } ... on BotErrors { code message } }
}"""


def stored_events(url: str, *names: str) -> list:
    trading = open_trading(url)
    try:
        return [trading.mapper.to_domain_event(n) for n in read_log(trading)
                if n.topic.rsplit(".", 1)[-1] in names]
    finally:
        trading.close()


def deals_closed(server, token: str, bot_id: str) -> int:
    try:
        return server.gql(BOT, {"id": bot_id}, token)["bot"]["dealsClosed"]
    except Exception:  # the read model may be catching up after a restart
        return 0


def kill_while_an_order_is_held(server, sim, execute: bool) -> bool:
    """Hold the next order request at the exchange (executed at once, or not at all, and
    answered only after 60 s), and kill the server while it waits for the answer."""
    held_before = sum(1 for a in sim.ledger().attempts if a.fault == "timeout")
    sim.timeout(seconds=60, execute=execute)
    try:
        wait_for("an order request held by the exchange",
                 lambda: sum(1 for a in sim.ledger().attempts if a.fault == "timeout")
                 > held_before, timeout=60, every=0.05)
        held = True
    except AssertionError:
        held = False  # no order in time (e.g. a quiet market): an ordinary kill then
    server.kill()
    sim.clear_faults()
    return held


def test_kill_9_at_random_moments_loses_no_fill_and_places_no_order_twice(launch):
    rng = random.Random(20261206)
    with simulator_process(speed=600, balances={"USDT": "100000"}) as sim:
        server = launch(speed=None, env={
            "TRADETAPE_FEED": "ccxt:binance", "TRADETAPE_FEED_SANDBOX": "1",
            "TRADETAPE_SANDBOX_HOST": sim.url, "TRADETAPE_FEED_POLL_SECONDS": "0.2",
            "TRADETAPE_RECONCILE_SECONDS": "5"})
        token = new_user(server, "trader@example.com")
        account = server.gql(ADD, {"input": {
            "exchange": "binance", "sandbox": True, "apiKey": sim.api_key,
            "secret": sim.secret, "name": "simulator"}}, token)["addExchangeAccount"]
        assert account["__typename"] == "ExchangeAccount" and account["sandbox"], account
        bot = server.gql(CREATE, {"name": "live scalper", "config": CONFIG,
                                  "account": account["id"]}, token)["createBot"]
        assert bot["__typename"] == "Bot" and bot["mode"] == "LIVE", bot
        started = server.gql(START, {"id": bot["id"]}, token)["startBot"]
        assert started["__typename"] == "Bot", started

        kills = held = 0
        deals = 0
        while deals < DEALS or kills < KILLS:
            # a kill every few deals, at a random moment of a deal
            target = deals + rng.randint(1, 5)
            wait_for("the bot trading", lambda t=target: deals_closed(
                server, token, bot["id"]) >= t, timeout=120, every=0.1)
            time.sleep(rng.uniform(0, 1.5))
            if kills % 4 == 1:
                held += kill_while_an_order_is_held(server, sim, execute=kills % 8 == 1)
            else:
                server.kill()
            kills += 1
            server.start()
            deals = max(deals, deals_closed(server, token, bot["id"]))
        # the market stops; one more start reconciles whatever the last kill left open
        sim.set_speed(0)
        server.kill()
        server.start()
        time.sleep(3)
        server.stop()
        ledger = sim.ledger()
        seen = sim.client_order_ids_seen()
        keys = (sim.api_key, sim.secret)

    # the account's keys appear in no output of any run, and not in the database file
    outputs = [path.read_bytes() for path in server.logs.glob("*.txt")]
    database = Path(server.database_url.removeprefix("sqlite:///"))
    stored = [path.read_bytes() for path in database.parent.glob(database.name + "*")]
    for key in keys:
        assert not [blob for blob in outputs + stored if key.encode() in blob]

    assert kills >= KILLS and held >= 3, (kills, held)
    assert [cid for cid, n in seen.items() if n > 1] == []

    url = server.database_url
    observed = stored_events(url, "TradeObserved")
    assert Counter(e.trade_id for e in observed) == Counter(
        str(t.trade_id) for t in ledger.trades), "a fill is missing from the log, or twice"
    by_id = {str(t.trade_id): t for t in ledger.trades}
    for event in observed:
        trade = by_id[event.trade_id]
        assert (event.price, event.amount, event.fee, event.fee_currency) == (
            trade.price, trade.qty, trade.commission, trade.commission_asset)

    deal_of = {e.originator_id: e.deal_id for e in stored_events(url, "Submitted")}
    order_of_trade = {e.trade_id: e.originator_id for e in observed}
    closed = {e.originator_id: e.realized_pnl for e in stored_events(url, "Closed")}
    assert len(closed) >= DEALS
    exchange_pnl: Counter = Counter()
    for trade in ledger.trades:
        deal = deal_of[order_of_trade[str(trade.trade_id)]]
        if deal in closed:
            flow = trade.quote_qty if trade.side == "SELL" else -trade.quote_qty
            fee = trade.commission if trade.commission_asset == "USDT" else Decimal(0)
            exchange_pnl[deal] += flow - fee
    assert closed == dict(exchange_pnl)
    assert sum(closed.values()) == sum(exchange_pnl.values())
