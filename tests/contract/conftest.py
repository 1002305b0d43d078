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


VENUES = {"paper": _paper}


@pytest.fixture(params=sorted(VENUES))
def venue(request) -> Iterator[Venue]:
    yield from VENUES[request.param]()
