"""A bot's (or an owner's) tally of deal results, as the ledgers keep it (``ledger.py``):
counters, P/L sums, the drawdown of cumulative realized P/L from its running peak, capital
committed, and the ratios derived from them when the row is written."""

from __future__ import annotations

from decimal import Decimal

from domain.money import ZERO
from projections.tables import Row

TALLY_COLUMNS = dict(
    realized_pnl="money", fees="money", deals_closed="int",
    deals_open="int", wins="int", losses="int", gross_profit="money", gross_loss="money",
    win_rate="money", profit_factor="money", peak_realized="money", max_drawdown="money",
    committed="money", capital_max="money", capital_committed="money", roi="money",
    step_pending="text",
)


def new_tally() -> Row:
    tally: Row = dict.fromkeys(TALLY_COLUMNS, ZERO)
    tally.update(deals_closed=0, deals_open=0, wins=0, losses=0, win_rate=None,
                 profit_factor=None, roi=None, step_pending=None)
    return tally


def close_into(tally: Row, pnl: Decimal) -> None:
    tally["deals_closed"] += 1
    tally["deals_open"] -= 1
    tally["realized_pnl"] += pnl
    if pnl > ZERO:
        tally["wins"] += 1
        tally["gross_profit"] += pnl
    elif pnl < ZERO:
        tally["losses"] += 1
        tally["gross_loss"] -= pnl
    tally["peak_realized"] = max(tally["peak_realized"], tally["realized_pnl"])
    tally["max_drawdown"] = max(tally["max_drawdown"],
                                tally["peak_realized"] - tally["realized_pnl"])


def recount(tally: Row, before: Decimal, after: Decimal) -> None:
    """A closed deal's realized P/L was corrected from ``before`` to ``after``: the tally
    counts it as if it had closed with ``after``, and its drawdown goes on from here."""
    _count(tally, before, -1)
    _count(tally, after, +1)
    tally["realized_pnl"] += after - before
    tally["peak_realized"] = max(tally["peak_realized"], tally["realized_pnl"])
    tally["max_drawdown"] = max(tally["max_drawdown"],
                                tally["peak_realized"] - tally["realized_pnl"])


def _count(tally: Row, pnl: Decimal, sign: int) -> None:
    if pnl > ZERO:
        tally["wins"] += sign
        tally["gross_profit"] += sign * pnl
    elif pnl < ZERO:
        tally["losses"] += sign
        tally["gross_loss"] -= sign * pnl


def derive(tally: Row) -> None:
    """The ratios, from the counters (written with the row)."""
    closed, loss = tally["deals_closed"], tally["gross_loss"]
    tally["win_rate"] = Decimal(tally["wins"]) / closed if closed else None
    tally["profit_factor"] = tally["gross_profit"] / loss if loss else None
    capital = max(tally["capital_max"], tally["committed"])
    tally["capital_committed"] = capital
    tally["roi"] = tally["realized_pnl"] / capital if capital else None
