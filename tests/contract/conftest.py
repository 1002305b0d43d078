"""The venues the exchange contract runs against, each behind one small handle.

A ``Venue`` gives the contract what it cannot ask the port: the market's current price and
a way to let the market move on (the simulator's clock). Every venue starts with the same
account: 10,000 USDT and 0.5 BTC, trading BTC/USDT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from domain.ports import Exchange

QUOTE_START, BASE_START = Decimal("10000"), Decimal("0.5")


@dataclass
class Venue:
    name: str
    exchange: Exchange
    price: Callable[[], Decimal]  # the market's last price
    settle: Callable[[], None]  # let the market move on (a minute), so resting orders may fill
    pair: str = "BTC/USDT"
    base: str = "BTC"
    quote: str = "USDT"


def _paper() -> Iterator[Venue]:
    from adapters.exchanges.paper import PaperExchange

    paper = PaperExchange("BTC/USDT", quote_balance=QUOTE_START, base_balance=BASE_START)
    paper.move_to(Decimal("91234.56"))
    yield Venue("paper", paper, lambda: paper.price, lambda: None)


def _ccxt_binance_on_the_simulator() -> Iterator[Venue]:
    """ccxt's binance class, through CcxtExchange, against the local exchange simulator
    (Binance's spot REST on 127.0.0.1, its clock moved only by ``settle``)."""
    from adapters.exchanges.ccxt_client import ApiCredentials
    from adapters.exchanges.ccxt_venue import CcxtExchange
    from tests.exchange_simulator import running_simulator

    balances = {"USDT": str(QUOTE_START), "BTC": str(BASE_START)}
    with running_simulator(speed=0, balances=balances) as sim:
        sim.advance(5 * 60_000)
        exchange = CcxtExchange.open("binance", sandbox=True, sandbox_host=sim.url,
                                     credentials=ApiCredentials(sim.api_key, sim.secret),
                                     sleep=lambda _: None)

        def price() -> Decimal:  # the open candle's close is its open: a market order's price
            candles = exchange.client.fetch_ohlcv("BTC/USDT", "1m", None, 1)
            return Decimal(candles[-1][4])

        yield Venue("ccxt-binance", exchange, price, lambda: sim.advance(60_000) and None)


VENUES = {"paper": _paper, "ccxt-binance": _ccxt_binance_on_the_simulator}


@pytest.fixture(params=sorted(VENUES))
def venue(request) -> Iterator[Venue]:
    yield from VENUES[request.param]()
