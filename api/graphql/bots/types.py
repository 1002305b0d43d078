"""Bots as the bot list view holds them, with their open deal, configuration and P/L."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.common import Counted, Errors, PageInfo, when
from api.graphql.deals.types import Deal, open_unrealized
from api.graphql.funding.types import FundingPlan, funding_plan_of
from api.graphql.remarking import marked
from domain import dca
from projections.tables import Row


@strawberry.enum
class BotStatus(Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


@strawberry.enum
class BotMode(Enum):
    PAPER = "paper"
    LIVE = "live"


@strawberry.type
class TakeProfitStep:
    pct: Decimal
    volume_pct: Decimal


@strawberry.type
class DcaConfig:
    pair: str
    base_order_quote: Decimal
    safety_order_quote: Decimal
    max_safety_orders: int
    price_deviation_pct: Decimal
    safety_volume_scale: Decimal
    safety_step_scale: Decimal
    take_profit_pct: Decimal
    stop_loss_pct: Decimal | None
    trailing_take_profit_pct: Decimal | None
    cooldown_seconds: int
    take_profit_steps: list[TakeProfitStep]
    stop_loss_to_breakeven: bool
    trailing_stop_loss: bool
    stop_loss_activation_pct: Decimal | None
    start_condition: str = strawberry.field(description="asap or signal")

    @classmethod
    def of(cls, config: dca.DcaConfig) -> DcaConfig:
        return cls(**{name: getattr(config, name) for name in (
            "pair", "base_order_quote", "safety_order_quote", "max_safety_orders",
            "price_deviation_pct", "safety_volume_scale", "safety_step_scale",
            "take_profit_pct", "stop_loss_pct", "trailing_take_profit_pct",
            "cooldown_seconds", "stop_loss_to_breakeven", "trailing_stop_loss",
            "stop_loss_activation_pct", "start_condition")},
            take_profit_steps=[TakeProfitStep(pct=s.pct, volume_pct=s.volume_pct)
                               for s in config.take_profit_steps])


UNREALIZED_SHOWN = {"unrealizedPnl": lambda value: format(value, "f")}  # as the scalar


@strawberry.type
class BotPnl:
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    deals_closed: int
    deals_open: int
    win_rate: Decimal | None
    profit_factor: Decimal | None
    max_drawdown: Decimal
    capital_committed: Decimal
    roi: Decimal | None

    @classmethod
    def from_row(cls, row: Row) -> BotPnl:
        return cls(**{name: row[name] for name in (
            "realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open",
            "win_rate", "profit_factor", "max_drawdown", "capital_committed", "roi")})


@strawberry.type
class Bot:
    id: strawberry.ID
    name: str
    status: BotStatus
    mode: BotMode
    pair: str
    config_version: int
    exchange_account_id: strawberry.ID
    deals_opened: int = strawberry.field(description="Deals the bot started")
    deals_closed: int = strawberry.field(
        description="Deals that ended with a sale (take profit, stop loss or manual)")
    deals_cancelled: int = strawberry.field(
        description="Deals given up without buying anything (e.g. the base order refused)")
    error_reason: str | None
    warning: str | None = strawberry.field(description=(
        "What keeps the bot from trading as configured without stopping it, e.g. which "
        "safety order the exchange refused and why (live accounts)"))
    leaderboard_opt_in: bool
    created_at: datetime
    updated_at: datetime
    open_deal_id: strawberry.ID | None
    archived: bool = strawberry.field(default=False, description=(
        "Deleted by its owner (deleteBot): kept with its history, left out of lists"))
    # (its pnl_bots row, its open deal's pnl_deals row), read with the page's bots
    preloaded: strawberry.Private[tuple | None] = None

    @strawberry.field(description="The deal the bot is in, if any")
    async def open_deal(self, info: Info) -> Deal | None:
        if self.open_deal_id is None:
            return None
        row = await info.context.loaders.deals.load(str(self.open_deal_id))
        return None if row is None else Deal.from_row(row)

    @strawberry.field(description="The configuration in force (read from the bot's events)")
    async def config(self, info: Info) -> DcaConfig | None:
        config = await info.context.loaders.bot_configs.load(str(self.id))
        return None if config is None else DcaConfig.of(config)

    @strawberry.field(description="P/L figures of every deal the bot made (the open deal "
                      "marked at the market's price)")
    def pnl(self, info: Info) -> BotPnl | None:
        # Not async where the page read every bot's rows at once (``preloaded``): an
        # awaited resolver per bot cost more than its figures (about 0.1 ms a bot).
        if self.preloaded is not None:
            return pnl_of(info, *self.preloaded)
        return self._load_pnl(info)  # awaited by the executor, as an async resolver's

    async def _load_pnl(self, info: Info) -> BotPnl | None:
        loaders = info.context.loaders
        row = await loaders.bot_pnl.load(str(self.id))
        deal = None if row is None or self.open_deal_id is None else (
            await loaders.deal_pnl.load(str(self.open_deal_id)))
        return pnl_of(info, row, deal)

    @strawberry.field(description=(
        "The bot's latest funding plan, if its account ever could not cover it "
        "(status awaiting_deposit or ready_to_execute: the bot waits for it)"))
    async def funding_plan(self, info: Info) -> FundingPlan | None:
        return await funding_plan_of(info, str(self.id))

    @classmethod
    def from_row(cls, row: Row) -> Bot:
        open_deal = row["open_deal_id"]
        return cls(id=strawberry.ID(row["bot_id"]), name=row["name"],
                   status=BotStatus(row["status"]), mode=BotMode(row["mode"]),
                   pair=row["pair"], config_version=row["config_version"],
                   exchange_account_id=strawberry.ID(row["exchange_account_id"]),
                   deals_opened=row["deals_opened"], deals_closed=row["deals_closed"],
                   deals_cancelled=row["deals_cancelled"],
                   error_reason=row["error_reason"], warning=row["warning"],
                   leaderboard_opt_in=bool(row["leaderboard_opt_in"]),
                   created_at=when(row["created_at"]), updated_at=when(row["updated_at"]),
                   open_deal_id=None if open_deal is None else strawberry.ID(open_deal),
                   archived=bool(row.get("archived")))


def pnl_of(info: Info, row: Row | None, deal: Row | None) -> BotPnl | None:
    """A bot's P/L from its ``pnl_bots`` row, its open deal (``pnl_deals``) marked at the
    market's price."""
    if row is None:
        return None
    pnl = BotPnl.from_row(row)
    if deal is not None and deal["status"] == "open":
        runtime = info.context.runtime
        # a cached answer is marked again at the next price, not made again
        pnl.unrealized_pnl = marked(info, lambda: open_unrealized(runtime, deal),
                                    UNREALIZED_SHOWN)
    return pnl


@strawberry.type
class BotEdge:
    node: Bot
    cursor: str


@strawberry.type
class BotConnection(Counted):
    edges: list[BotEdge]
    page_info: PageInfo


@strawberry.type
class BotErrors(Errors):
    """Why a bot command was refused: ``code`` is the first error's (BOT_NAME_DUPLICATE,
    BOT_LIMIT_REACHED, INVALID_CONFIG, EXCHANGE_ACCOUNT_MISSING, NOT_FOUND, ...)."""

BotResult = Annotated[Bot | BotErrors, strawberry.union("BotResult")]
