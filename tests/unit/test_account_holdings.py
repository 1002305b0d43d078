"""What the reconciliation expects an account to hold: every open deal's and position's
units on it, whoever recorded them, read from the log and caught up with what is appended
later; closed deals, closed positions and other accounts' holdings not counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from application.account_holdings import AccountHoldings
from application.bootstrap import open_trading
from domain.deals import CloseReason, Deal
from domain.positions import Position
from domain.recording import Cause

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CAUSE = Cause(T0, "test", "test")


def _deal(account: str, pair: str, *amounts: str) -> Deal:
    deal = Deal.open(uuid.uuid4(), CAUSE, bot_id=uuid.uuid4(), owner_id="u1",
                     exchange_account_id=account, pair=pair, take_profit_pct=Decimal("1"),
                     stop_loss_pct=None)
    for n, amount in enumerate(amounts):
        deal.record_buy(CAUSE, order_id=uuid.uuid4(), safety_order=n, price=Decimal("100"),
                        amount=Decimal(amount), fee=Decimal("0"))
    return deal


def test_every_open_deal_and_position_of_the_account_counts_and_nothing_else():
    trading = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("h"))
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = _deal(mine, "BTC/USDT", "0.01", "0.02")
    second = _deal(mine, "BTC/USDT", "0.5")  # another bot's (another worker's)
    eth = _deal(mine, "ETH/USDT", "2")
    elsewhere = _deal(other, "BTC/USDT", "7")
    closed = _deal(mine, "BTC/USDT", "3")
    closed.close(CAUSE, reason=CloseReason.TAKE_PROFIT, order_id=uuid.uuid4(),
                 price=Decimal("101"), amount=Decimal("3"), fee=Decimal("0"))
    position = Position.open(uuid.uuid4(), CAUSE, owner_id="u1", exchange_account_id=mine,
                             pair="BTC/USDT", entry="market")
    position.record_buy(CAUSE, order_id=uuid.uuid4(), price=Decimal("100"),
                        amount=Decimal("1"), fee=Decimal("0"))
    trading.append(first, second, eth, elsewhere, closed, position)

    holdings = AccountHoldings(trading)
    holdings.catch_up()
    assert holdings.held(mine) == {"BTC": Decimal("1.53"), "ETH": Decimal("2")}
    assert holdings.held(other) == {"BTC": Decimal("7")}

    # later, recorded by any process: a step sold, a position partly sold, a deal closed
    first.sell_step(CAUSE, step=1, order_id=uuid.uuid4(), price=Decimal("102"),
                    amount=Decimal("0.01"), fee=Decimal("0"), average=Decimal("100"))
    position.record_sell(CAUSE, order_id=uuid.uuid4(), exit_id=None, price=Decimal("103"),
                         amount=Decimal("0.4"), fee=Decimal("0"), reason="manual")
    eth.close(CAUSE, reason=CloseReason.MANUAL, order_id=uuid.uuid4(), price=Decimal("99"),
              amount=Decimal("2"), fee=Decimal("0"))
    trading.append(first, position, eth)
    assert holdings.catch_up() == 3  # only what was appended since
    assert holdings.held(mine) == {"BTC": Decimal("1.12")}
    # the position sold out, what the exchange's step left as dust no longer its
    position.record_sell(CAUSE, order_id=uuid.uuid4(), exit_id=None, price=Decimal("103"),
                         amount=Decimal("0.5"), fee=Decimal("0"), reason="manual", closes=True)
    trading.append(position)
    holdings.catch_up()
    assert holdings.held(mine) == {"BTC": Decimal("0.52")}
    assert holdings.open_holdings() == 3
