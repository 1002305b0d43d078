"""What a bot's capital needs and the ``FundingPlan`` aggregate that records a shortfall.

A bot's worst case is its whole ladder filled: the base order and every safety order, each
at the quote the ladder gives it (safety order n buys ``S × VS^(n−1)`` quote whatever the
price it fills at), plus the fee on each (``FEE_ALLOWANCE``, the paper venue's rate and a
common taker fee). A bot whose worst case exceeds what its account has free, after the
needs of the account's other running bots, gets a plan: ``awaiting_deposit`` with the
amount missing, the asset, the account and, when another account of the owner has that
asset to spare, a transfer suggestion from there. An observed balance that covers it makes
it ``ready_to_execute``; starting the bot then ``executed``; the owner may cancel it.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.dca import DcaConfig, ladder
from domain.errors import InvalidTransitionError
from domain.money import ONE
from domain.recording import Cause, TradetapeAggregate, ValueEnum

# The fee counted on every order of the worst case (0.1 %: the paper venue's rate).
FEE_ALLOWANCE = Decimal("0.001")
# walletRequirements' health: ``critical`` when the account cannot cover its running bots'
# worst case, ``warning`` when less than this share of what they need is left to spare.
WARNING_MARGIN = Decimal("0.10")


class FundingStatus(ValueEnum):
    AWAITING_DEPOSIT = "awaiting_deposit"
    READY_TO_EXECUTE = "ready_to_execute"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (FundingStatus.AWAITING_DEPOSIT, FundingStatus.READY_TO_EXECUTE)


def worst_case_capital(config: DcaConfig) -> Decimal:
    """Quote the bot spends when its base order and every safety order fill, fees included."""
    # Each level's quote does not depend on the price: any entry price gives the same sum.
    return ladder(config, ONE)[-1].total_quote * (ONE + FEE_ALLOWANCE)


def requirement_health(required: Decimal, available: Decimal) -> str:
    """``ok``, ``warning`` (covered, with less than 10 % of ``required`` to spare) or
    ``critical`` (not covered)."""
    if available < required:
        return "critical"
    if available - required < required * WARNING_MARGIN:
        return "warning"
    return "ok"


def plan_message(*, bot_name: str, required: Decimal, available: Decimal, amount: Decimal,
                 asset: str, account_id: str, safety_orders: int,
                 transfer_from: str | None, transfer_amount: Decimal | None) -> str:
    """The plan's text, from its figures (one template, so clients may show it as is)."""
    text = (f"Bot {bot_name} needs {_figure(required)} {asset} at worst (base order, "
            f"{safety_orders} safety orders and fees); account {account_id} has "
            f"{_figure(available)} {asset} free after its other running bots: deposit "
            f"{_figure(amount)} {asset}")
    if transfer_from is not None and transfer_amount is not None:
        text += (f", or transfer {_figure(transfer_amount)} {asset} from account "
                 f"{transfer_from} which has it to spare")
    return text + "."


def _figure(amount: Decimal) -> str:
    """As people write it: no trailing zeros, no exponent (12512.5, 10000)."""
    return format(amount.normalize(), "f")


class FundingPlan(TradetapeAggregate):
    bot_id: str
    owner_id: str
    account_id: str
    asset: str
    required: Decimal
    available: Decimal
    amount: Decimal
    transfer_from: str | None
    transfer_amount: Decimal | None
    message: str
    status: FundingStatus
    reason: str | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Opened(TradetapeAggregate.Created, Event):
        bot_id: str
        owner_id: str
        account_id: str
        asset: str
        required: Decimal
        available: Decimal
        amount: Decimal
        transfer_from: str | None
        transfer_amount: Decimal | None
        message: str

        def apply(self, plan: FundingPlan) -> None:
            plan.bot_id, plan.owner_id, plan.account_id = (self.bot_id, self.owner_id,
                                                           self.account_id)
            plan.asset, plan.required, plan.available = self.asset, self.required, self.available
            plan.amount, plan.message = self.amount, self.message
            plan.transfer_from, plan.transfer_amount = self.transfer_from, self.transfer_amount
            plan.status, plan.reason = FundingStatus.AWAITING_DEPOSIT, None

    class Covered(Event):
        """An observed balance covers the need: the plan waits for the bot's start."""

        available: Decimal

        def apply(self, plan: FundingPlan) -> None:
            plan.status, plan.available = FundingStatus.READY_TO_EXECUTE, self.available

    class Uncovered(Event):
        """The balance fell short again before the bot started (a withdrawal, another
        bot started on the account)."""

        available: Decimal

        def apply(self, plan: FundingPlan) -> None:
            plan.status, plan.available = FundingStatus.AWAITING_DEPOSIT, self.available

    class Executed(Event):
        def apply(self, plan: FundingPlan) -> None:
            plan.status = FundingStatus.EXECUTED

    class Cancelled(Event):
        reason: str

        def apply(self, plan: FundingPlan) -> None:
            plan.status, plan.reason = FundingStatus.CANCELLED, self.reason

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def open(cls, plan_id: UUID, cause: Cause, *, bot_id: str, owner_id: str,
             account_id: str, asset: str, required: Decimal, available: Decimal,
             transfer_from: str | None, transfer_amount: Decimal | None,
             message: str) -> FundingPlan:
        if available >= required:
            raise InvalidTransitionError("the account covers the need: no plan is needed",
                                         code="FUNDING_NOT_NEEDED")
        return cls._start(cls.Opened, plan_id, cause, bot_id=bot_id, owner_id=owner_id,
                          account_id=account_id, asset=asset, required=required,
                          available=available, amount=required - available,
                          transfer_from=transfer_from, transfer_amount=transfer_amount,
                          message=message)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def observe(self, cause: Cause, available: Decimal) -> bool:
        """What the account has free for this bot now; True when the status changed."""
        covered = available >= self.required
        if self.status is FundingStatus.AWAITING_DEPOSIT and covered:
            self._record(self.Covered, cause, available=available)
            return True
        if self.status is FundingStatus.READY_TO_EXECUTE and not covered:
            self._record(self.Uncovered, cause, available=available)
            return True
        return False

    def execute(self, cause: Cause) -> None:
        if self.status is not FundingStatus.READY_TO_EXECUTE:
            raise InvalidTransitionError(f"the funding plan is {self.status}",
                                         code="FUNDING_PLAN_NOT_READY")
        self._record(self.Executed, cause)

    def cancel(self, cause: Cause, reason: str) -> None:
        if not self.is_open:
            raise InvalidTransitionError(f"the funding plan is {self.status}",
                                         code="FUNDING_PLAN_CLOSED")
        self._record(self.Cancelled, cause, reason=reason[:200])
