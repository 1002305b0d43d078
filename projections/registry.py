"""Every projection, by the name the commands use."""

from __future__ import annotations

from projections.audit import AuditLog
from projections.backtests import Backtests
from projections.balances import Balances
from projections.billing_ledger import BillingLedger
from projections.equity import Equity
from projections.framework import Projection
from projections.frontend import FrontEnd
from projections.leaderboard import Leaderboard
from projections.paper_book import PaperBook
from projections.pnl import Pnl
from projections.runner import ProjectionError
from projections.wallet import WalletRequirements

PROJECTIONS: dict[str, type[Projection]] = {
    cls.name: cls for cls in (AuditLog, Balances, Pnl, Leaderboard, FrontEnd,
                              WalletRequirements, BillingLedger, Equity, Backtests,
                              PaperBook)
}


def select(names: list[str] | None) -> list[type[Projection]]:
    """The projections named (all of them for none), or a ProjectionError naming the unknown."""
    if not names:
        return list(PROJECTIONS.values())
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        raise ProjectionError("UNKNOWN_PROJECTION",
                              f"no projection {', '.join(unknown)}; known: "
                              f"{', '.join(PROJECTIONS)}")
    return [PROJECTIONS[n] for n in dict.fromkeys(names)]
