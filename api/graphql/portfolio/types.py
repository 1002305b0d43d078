"""Money views: the portfolio (balances and P/L), a bot's daily series, the leaderboard."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry

from api.graphql.common import when
from api.graphql.deals.types import open_unrealized
from api.graphql.display import display, shown_as
from domain.money import ZERO
from projections.tables import Row

PORTFOLIO_QUOTE = "USDT"


@strawberry.type
class Balance:
    account_id: strawberry.ID
    asset: str
    free: Decimal
    locked: Decimal
    total: Decimal
    updated_at: datetime | None
    free_display: str | None = display("free", lambda b: b.asset)
    locked_display: str | None = display("locked", lambda b: b.asset)
    total_display: str | None = display("total", lambda b: b.asset)


@strawberry.type
class Portfolio:
    as_of: datetime | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    deals_closed: int
    deals_open: int
    wins: int
    losses: int
    win_rate: Decimal | None
    profit_factor: Decimal | None
    max_drawdown: Decimal
    capital_committed: Decimal
    roi: Decimal | None
    balances: list[Balance]
    position: int | None = strawberry.field(default=None, description=(
        "with asOf: the log position the answer reflects (the last event recorded by then)"))
    # The paper market's quote currency: the P/L of every bot is summed in it.
    realized_pnl_display: str | None = display("realized_pnl", lambda _: PORTFOLIO_QUOTE)
    unrealized_pnl_display: str | None = display("unrealized_pnl", lambda _: PORTFOLIO_QUOTE)
    fees_display: str | None = display("fees", lambda _: PORTFOLIO_QUOTE)

    @classmethod
    def of(cls, found: dict[str, Any], runtime: Any = None) -> Portfolio:
        """With ``runtime`` (now, not asOf): open deals marked at the market's price."""
        balances = [Balance(account_id=strawberry.ID(b["account_id"]), asset=b["asset"],
                            free=b["free"], locked=b["locked"], total=b["total"],
                            updated_at=when(b["updated_at"])) for b in found["balances"]]
        figures = {k: v for k, v in found.items() if k not in ("balances", "open_deals")}
        if runtime is not None and found.get("open_deals") is not None:
            figures["unrealized_pnl"] = marked_unrealized(runtime, found["open_deals"])
        return cls(**figures, balances=balances)


def marked_unrealized(runtime: Any, open_deals: list[dict]) -> Decimal:
    """The open deals marked at the market's prices, summed."""
    return sum((open_unrealized(runtime, d) for d in open_deals), ZERO)


# How a portfolio shows its unrealized P/L (re-marking a cached answer writes these)
UNREALIZED_SHOWN = {"unrealizedPnl": lambda value: format(value, "f"),
                    "unrealizedPnlDisplay": lambda value: shown_as(value, PORTFOLIO_QUOTE)}


@strawberry.type
class PnlPoint:
    day: date
    realized_pnl: Decimal
    fees: Decimal
    deals_closed: int
    cumulative_realized: Decimal

    @classmethod
    def from_row(cls, row: Row) -> PnlPoint:
        return cls(day=date.fromisoformat(row["day"]), realized_pnl=row["realized_pnl"],
                   fees=row["fees"], deals_closed=row["deals_closed"],
                   cumulative_realized=row["cumulative_realized"])


@strawberry.type
class LeaderboardEntry:
    rank: int
    bot_id: strawberry.ID
    name: str | None
    pair: str | None
    roi: Decimal | None
    win_rate: Decimal | None
    profit_factor: Decimal | None
    deals_closed: int
    realized_pnl: Decimal
    capital_committed: Decimal
    max_drawdown: Decimal
