"""A restart puts every open position back on its desk, with its active exits and its
resting orders, the same whether they are loaded together (PostgreSQL's many-ids reads) or
one at a time (``TRADETAPE_BULK_LOAD=0``, the library's repository): what the user then
sees (their positions, each one's exits and orders) and what rests on the venue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.positions import Positions
from domain.positions import ExitStatus
from domain.recording import Cause

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAIR = "BTC/USDT"
D = Decimal
OWNERS = [UUID(int=1), UUID(int=2)]


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


class Desk:
    def __init__(self, url: str, clock, seed: str):
        self.clock = clock
        self.trading = open_trading(url, clock=clock, ids=SequentialIds(seed))
        self.runner = PaperTrading(self.trading, self.trading.ids, venue)
        self.runner.resume()
        self.positions = Positions(self.trading, self.runner)

    def feed(self, candles, first: int, last: int) -> None:
        for i in range(first, last):
            o, h, low, c = candles.exact(i)
            self.runner.on_candle(PAIR, int(candles.timestamps[i]), o, h, low, c,
                                  self.clock.now())

    def seen(self) -> dict:
        """What each owner reads: positions, each with its exits and orders (by id, with
        the fields a user sees)."""
        return {owner: [(v.position.id, v.position.status, v.position.units,
                         [(e.id, e.status, e.amount) for e in v.exits],
                         [(leg, o.id, o.status, o.price, o.remaining) for leg, o in v.orders])
                        for v in self.positions.list(owner)]
                for owner in OWNERS}


def build(url: str, candles) -> tuple[SteppingClock, list[str], dict[UUID, list[UUID]]]:
    """Two owners, three positions each: one closed, two open with an OCO (one of those
    OCOs cancelled). Returns the clock, the accounts and the open positions by owner."""
    clock = SteppingClock(T0, timedelta(seconds=1))
    desk = Desk(url, clock, "before")
    accounts = []
    for owner in OWNERS:
        account = desk.trading.open_account(owner_id=str(owner), exchange="paper",
                                            quote_asset="USDT")
        desk.trading.deposit(account, "USDT", D("100000"), actor=str(owner))
        accounts.append(str(account))
    desk.feed(candles, 0, 2)  # a price
    still_open: dict[UUID, list[UUID]] = {}
    for owner, account in zip(OWNERS, accounts, strict=True):
        made = [desk.positions.open_position(owner, exchange_account_id=account, pair=PAIR,
                                             quote_amount=D(100 + 10 * n)) for n in range(3)]
        cause = Cause(clock.now(), str(owner), f"close-{owner}")
        desk.positions.close_position(owner, made[0].id, cause)
        groups = []
        for position in made[1:]:
            price = position.entry_price
            groups.append(desk.positions.add_oco(owner, position.id,
                                                 take_profit_price=price * D("1.5"),
                                                 stop_price=price * D("0.5")))
        desk.positions.cancel_exit(owner, groups[0].id)
        still_open[owner] = [p.id for p in made[1:]]
    desk.trading.close()
    return clock, accounts, still_open


def restarted(url: str, clock, accounts, monkeypatch, bulk: bool) -> Desk:
    monkeypatch.setenv("TRADETAPE_BULK_LOAD", "1" if bulk else "0")
    desk = Desk(url, clock, f"after-{bulk}")
    desk.accounts = accounts
    assert desk.positions.resume() == 4  # two owners, two open positions each
    return desk


def test_positions_resumed_together_are_the_ones_resumed_one_at_a_time(
        postgres_url, candles, monkeypatch):
    clock, accounts, still_open = build(postgres_url, candles)
    together = restarted(postgres_url, clock, accounts, monkeypatch, bulk=True)
    one_by_one = restarted(postgres_url, clock, accounts, monkeypatch, bulk=False)
    try:
        for desk in (together, one_by_one):
            for owner, account in zip(OWNERS, accounts, strict=True):
                on = desk.runner.desk(account, PAIR)
                assert sorted(on.positions) == sorted(still_open[owner])
                # one OCO each still active (the other cancelled before the restart)
                active = [g for g in on.exits.values() if g.status is ExitStatus.ACTIVE]
                assert len(active) == 1 and len(on.exits) == 1
        assert together.seen() == one_by_one.seen()
        for account in accounts:
            a, b = together.runner.desk(account, PAIR), one_by_one.runner.desk(account, PAIR)
            assert {i: vars(p) for i, p in a.positions.items()} == {
                i: vars(p) for i, p in b.positions.items()}
            assert {i: vars(g) for i, g in a.exits.items()} == {
                i: vars(g) for i, g in b.exits.items()}
            resting = [(o.exchange_order_id, o.client_order_id, o.status)
                       for o in a.venue.fetch_open_orders(PAIR)]
            assert resting == [(o.exchange_order_id, o.client_order_id, o.status)
                               for o in b.venue.fetch_open_orders(PAIR)]
            assert len(resting) == 1  # the active OCO's take profit (its stop is emulated)
    finally:
        together.trading.close()
        one_by_one.trading.close()
