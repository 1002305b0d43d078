"""The paper → live promotion gate: a paper bot's record, the rules it must pass, and the
verdict (pure: figures in, every missed rule out).

Definitions (the README's *Promotion gate* says the same):

- running time: the time the bot spent running on paper (from each start or resume to the
  next pause, stop, error or promotion), up to the moment asked about;
- closed deals: its deals closed by then (a cancelled deal never bought, so it is none);
  a win is a closed deal whose realized P/L is > 0;
- maximum committed capital: the largest quote any one of its deals had spent on buys (the
  base order and the filled safety orders, price × amount, fees excluded), which for a deal
  is reached when its last buy fills;
- realized profit: the sum of the closed deals' realized P/L (fees included), as a
  percentage of that maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import DomainError
from domain.money import HUNDRED, ZERO

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class PromotionRules:
    """The thresholds (server settings ``TRADETAPE_PROMOTION_*``)."""

    min_days: Decimal = Decimal(7)
    min_closed_deals: int = 20
    min_win_rate_pct: Decimal = Decimal(55)
    min_profit_pct: Decimal = Decimal(3)


@dataclass(frozen=True)
class PaperRecord:
    running_seconds: int
    closed_deals: int
    wins: int
    realized_pnl: Decimal
    max_committed_quote: Decimal

    @property
    def running_days(self) -> Decimal:
        return Decimal(self.running_seconds) / DAY_SECONDS

    @property
    def win_rate_pct(self) -> Decimal:
        return ZERO if self.closed_deals == 0 else (
            Decimal(self.wins) * HUNDRED / self.closed_deals)

    @property
    def profit_pct(self) -> Decimal:
        """Realized profit as a percentage of the maximum committed capital (0 without any
        committed capital: nothing was risked, nothing was shown)."""
        if self.max_committed_quote <= ZERO:
            return ZERO
        return self.realized_pnl * HUNDRED / self.max_committed_quote


@dataclass(frozen=True)
class RuleOutcome:
    code: str  # the error code when missed (PROMOTION_TOO_EARLY ...)
    passed: bool
    required: str
    actual: str
    message: str


def _fmt(value: Decimal) -> str:
    """Figures as people read them: two decimals (the raw record holds them exactly)."""
    return f"{value:.2f}"


def judge(record: PaperRecord, rules: PromotionRules) -> list[RuleOutcome]:
    """Every rule with its figures, passed or not, in a fixed order."""
    days, rate, profit = record.running_days, record.win_rate_pct, record.profit_pct
    return [
        RuleOutcome("PROMOTION_TOO_EARLY", days >= rules.min_days, f"{rules.min_days} days",
                    f"{_fmt(days)} days", f"running on paper for {_fmt(days)} days, at least "
                    f"{rules.min_days} are needed"),
        RuleOutcome("PROMOTION_TOO_FEW_DEALS", record.closed_deals >= rules.min_closed_deals,
                    str(rules.min_closed_deals), str(record.closed_deals),
                    f"{record.closed_deals} closed deals, at least {rules.min_closed_deals} "
                    "are needed"),
        RuleOutcome("PROMOTION_WIN_RATE", record.closed_deals > 0
                    and rate >= rules.min_win_rate_pct, f"{rules.min_win_rate_pct}%",
                    f"{_fmt(rate)}%", f"win rate {_fmt(rate)}% ({record.wins} of "
                    f"{record.closed_deals} deals), at least {rules.min_win_rate_pct}% is "
                    "needed"),
        RuleOutcome("PROMOTION_PROFIT", record.max_committed_quote > ZERO
                    and profit >= rules.min_profit_pct, f"{rules.min_profit_pct}%",
                    f"{_fmt(profit)}%", f"realized profit {record.realized_pnl} is "
                    f"{_fmt(profit)}% of the maximum committed capital "
                    f"{record.max_committed_quote}, at least {rules.min_profit_pct}% is "
                    "needed"),
    ]


def missed(record: PaperRecord, rules: PromotionRules) -> list[DomainError]:
    """The rules missed, each as its error (empty: the bot may be promoted)."""
    return [DomainError(o.message, code=o.code) for o in judge(record, rules) if not o.passed]
