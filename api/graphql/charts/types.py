"""Chart data: equity curves (and, in ``candles.py``, prices)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry

from projections.equity import RESOLUTIONS


@strawberry.enum(description="The step between two points of a curve")
class Resolution(Enum):
    MINUTE = "MINUTE"
    FIVE_MINUTES = "FIVE_MINUTES"
    FIFTEEN_MINUTES = "FIFTEEN_MINUTES"
    HOUR = "HOUR"
    FOUR_HOURS = "FOUR_HOURS"
    DAY = "DAY"

    @property
    def seconds(self) -> int:
        return RESOLUTIONS[self.value]


@strawberry.type(description=(
    "Realized + unrealized P/L at the end of one step (the last minute recorded by then)"))
class EquityPoint:
    time: datetime
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    equity: Decimal


@strawberry.type(description="Prices over one step of time: open, high, low, close")
class Candle:
    time: datetime = strawberry.field(description="when the step began (UTC)")
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@strawberry.type(description="A pair's latest price on the server's market")
class PriceTick:
    pair: str
    price: Decimal
    at: datetime = strawberry.field(description="when the candle it closed was closed")
