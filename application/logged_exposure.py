"""What bots that this process does not trade hold open, as their events say: the risk
limits' measure of the deals a process judges from the log (another engine worker's, a bot
no worker can load, a stopped bot's deal)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from application.exposure_orders import open_orders
from application.trading import Trading
from domain.bots import Bot
from domain.dca import ladder
from domain.deals import Deal, DealStatus
from domain.money import ZERO
from domain.orders import Order
from domain.risk import Exposure

log = logging.getLogger("tradetape.risk")


def logged_exposure(trading: Trading, bot_ids: Iterable[UUID]) -> Exposure:
    """What bots that this process does not trade hold open, as their events say (the risk
    limits' measure: an open deal each, and at most what it commits: its buys' cost, its
    base order's quote x the part not filled (all of it while no fill is heard, as
    ``DcaEngine.committed_quote`` counts it), and while it has not begun to sell, the
    safety orders of its plan it has not filled, which may rest). A deal whose events this
    code cannot read (a newer version's) counts as its whole plan: the limit holds whatever
    it did. Loaded together (a few queries)."""
    bots = trading.load_many(bot_ids, Bot)
    holding = [bot for bot in bots.values() if bot.open_deal_id is not None]
    try:
        deals = trading.load_many([bot.open_deal_id for bot in holding], Deal)
    except Exception as error:  # (one of them unreadable: the reason it is not traded)
        log.debug("open deals read one at a time: %s", error)
        deals = {}
        for bot in holding:
            try:
                deals[bot.open_deal_id] = trading.get_deal(bot.open_deal_id)
            except Exception:
                continue
    # a base order filled in part may rest still: read (together) from the deals' orders,
    # those not found final at an earlier check (``application/exposure_orders.py``)
    base_ids = [deal.base_order_id for deal in deals.values()
                if deal.status is DealStatus.OPEN and deal.base_order_id is not None]
    try:
        bases: dict[UUID, Order] | None = open_orders(trading, base_ids)
    except Exception as error:  # (unreadable: each such base order counts all its quote)
        log.debug("base orders unread: %s", error)
        bases = None
    committed = ZERO
    for bot in holding:
        plan = ladder(bot.config, Decimal(1))
        deal = deals.get(bot.open_deal_id)
        if deal is None:  # unreadable: at most its whole plan
            committed += plan[-1].total_quote
        elif deal.status is DealStatus.OPEN:
            committed += deal.cost
            if deal.units_bought == ZERO:  # its base order sent, no fill heard yet (live)
                committed += plan[0].quote
            else:
                base = None if bases is None else bases.get(deal.base_order_id)
                if bases is None:
                    committed += plan[0].quote  # not read: at most all of it
                elif base is not None and base.is_open:
                    committed += plan[0].quote * base.remaining / base.amount
            if not deal.steps_sold:
                committed += sum((level.quote for level in plan[1 + deal.safety_orders_used:]),
                                 ZERO)
    return Exposure(len(holding), committed)
