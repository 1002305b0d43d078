"""Funding plans: a bot whose worst-case capital its account cannot cover is not started.

Creating such a bot records a ``FundingPlan`` (``awaiting_deposit``) beside it; starting it
is refused with ``INSUFFICIENT_FUNDS_EXCHANGE`` (a plan opened now) or
``FUNDING_PLAN_REQUIRED`` (its plan still waits), each naming the plan. The wallet monitor
(``application.wallet_monitor``) marks a plan ``ready_to_execute`` once an observed balance
covers it; starting the bot then ``executed``. The owner may cancel an open plan; stopping
the bot cancels it too.

What an account has for a bot, the rule checked here against the aggregates: its balance of
the bot's quote asset (free and locked: a running bot's resting orders are part of its own
need) less what the account's other running bots may still spend (their worst case less
what their open deal has spent already). A paper account's balance is what its deposits
and fills made (``PaperTrading.paper_wallet``); a live account's what the exchange last
reported (``BalanceObserved``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

from eventsourcing.utils import get_topic

from application.exchange_accounts import account_ids_of
from application.paper_trading import PaperTrading
from application.replay import stored_fields
from application.trading import Trading
from application.user_views import bots_owned_by
from domain.accounts import AccountKind, ExchangeAccount
from domain.bots import Bot, BotStatus
from domain.errors import DomainError, NotFoundError
from domain.funding import FundingPlan, FundingStatus, plan_message, worst_case_capital
from domain.money import ZERO
from domain.recording import Cause

log = logging.getLogger("tradetape.funding")


class FundingRequiredError(DomainError):
    """The bot's capital is not covered: ``plan_id`` names the plan that records the need."""

    def __init__(self, message: str, *, code: str, plan_id: UUID):
        super().__init__(message, code=code, field="id")
        self.plan_id = plan_id


class Funding:
    def __init__(self, trading: Trading, paper: PaperTrading):
        self.trading, self.paper = trading, paper

    # --- what a bot needs and what its account has ----------------------------------------

    def remaining_need(self, bot: Bot) -> Decimal:
        """The bot's worst case less what its open deal has spent already (cost and fees)."""
        need = worst_case_capital(bot.config)
        if bot.open_deal_id is not None:
            deal = self.trading.get_deal(bot.open_deal_id)
            need -= deal.cost + deal.buy_fees
        return max(need, ZERO)

    def balance(self, account: ExchangeAccount, asset: str) -> Decimal:
        """The account's total (free and locked) of ``asset``."""
        if account.kind is AccountKind.PAPER:
            held = self.paper.paper_wallet(str(account.id)).get(asset)
            return ZERO if held is None else held.total
        free, locked = account.observed.get(asset, (ZERO, ZERO))
        return free + locked

    def committed(self, account_id: str, asset: str, *, owner_id: str,
                  besides: UUID | None = None) -> Decimal:
        """What the account's running bots trading ``asset`` (but ``besides``) may spend."""
        total = ZERO
        for bot in self._bots_of(owner_id):
            if (bot.exchange_account_id == account_id and bot.id != besides
                    and bot.status is BotStatus.RUNNING and bot.config.quote_asset == asset):
                total += self.remaining_need(bot)
        return total

    def available_for(self, bot: Bot, account: ExchangeAccount) -> Decimal:
        asset = bot.config.quote_asset
        return self.balance(account, asset) - self.committed(
            str(account.id), asset, owner_id=bot.owner_id, besides=bot.id)

    # --- the rule, where bots are created and started ---------------------------------------

    def after_create(self, bot_id: UUID, actor: str) -> FundingPlan | None:
        """A new bot its account cannot cover gets its plan (the bot is created anyway)."""
        with self.paper.lock:
            bot = self.trading.get_bot(bot_id)
            account = self._account(bot)
            if account is None:
                return None
            need = self.remaining_need(bot)
            available = self.available_for(bot, account)
            if available >= need:
                return None
            return self._open(bot, account, need, available, self.trading.cause(actor))

    def before_start(self, bot: Bot, actor: str) -> FundingPlan | None:
        """Raises ``FundingRequiredError`` when the account cannot cover the bot; else the
        bot's open plan (to execute once it started), if it has one. Call with the paper
        lock held."""
        account = self._account(bot)
        if account is None:
            return None
        need, available = self.remaining_need(bot), self.available_for(bot, account)
        plan = self.open_plan_of(bot)
        cause = self.trading.cause(actor)
        if available >= need:
            if plan is not None and plan.status is FundingStatus.AWAITING_DEPOSIT:
                plan.observe(cause, available)
            return plan
        if plan is not None and plan.required == need and plan.account_id == str(account.id):
            if plan.observe(cause, available):  # it was ready: a balance fell since
                self.trading.save_all(plan)
            raise FundingRequiredError(
                f"{plan.message} Funding plan {plan.id} waits for it.",
                code="FUNDING_PLAN_REQUIRED", plan_id=plan.id)
        if plan is not None:  # the bot's needs changed since (its configuration)
            plan.cancel(cause, "superseded: the bot's needs changed")
            self.trading.save_all(plan)
        plan = self._open(bot, account, need, available, cause)
        raise FundingRequiredError(f"{plan.message} Funding plan {plan.id} records it.",
                                   code="INSUFFICIENT_FUNDS_EXCHANGE", plan_id=plan.id)

    def after_start(self, plan: FundingPlan | None, actor: str) -> None:
        if plan is not None and plan.status is FundingStatus.READY_TO_EXECUTE:
            plan.execute(self.trading.cause(actor))
            self.trading.save_all(plan)

    def bot_stopped(self, bot_id: UUID, actor: str) -> None:
        plan = self.open_plan_of(self.trading.get_bot(bot_id))
        if plan is not None:
            plan.cancel(self.trading.cause(actor), "the bot was stopped")
            self.trading.save_all(plan)

    def _open(self, bot: Bot, account: ExchangeAccount, need: Decimal, available: Decimal,
              cause: Cause) -> FundingPlan:
        asset = bot.config.quote_asset
        source, spare = self._transfer_source(bot, account, asset, need - available)
        message = plan_message(bot_name=bot.name, required=need, available=available,
                               amount=need - available, asset=asset,
                               account_id=str(account.id),
                               safety_orders=bot.config.max_safety_orders,
                               transfer_from=source, transfer_amount=spare)
        plan = FundingPlan.open(self.trading.ids.new_id(), cause, bot_id=str(bot.id),
                                owner_id=bot.owner_id, account_id=str(account.id),
                                asset=asset, required=need, available=available,
                                transfer_from=source, transfer_amount=spare, message=message)
        self.trading.save_all(plan)
        log.info("funding plan %s opened bot=%s account=%s amount=%s %s", plan.id, bot.id,
                 account.id, plan.amount, asset)
        return plan

    def _transfer_source(self, bot: Bot, account: ExchangeAccount, asset: str,
                         missing: Decimal) -> tuple[str | None, Decimal | None]:
        """The owner's other account with the most ``asset`` to spare (after its own running
        bots), and how much of ``missing`` it can give; (None, None) when none has any."""
        best, spare = None, ZERO
        for other_id in account_ids_of(self.trading, bot.owner_id):
            other = self.trading.get_account(other_id)
            if other.id == account.id or other.removed:
                continue
            free = self.balance(other, asset) - self.committed(
                str(other.id), asset, owner_id=bot.owner_id)
            if free > spare:
                best, spare = str(other.id), free
        return (None, None) if best is None else (best, min(spare, missing))

    # --- plans ----------------------------------------------------------------------------

    def plans(self, owner_id: str, status: FundingStatus | None = None) -> list[FundingPlan]:
        """The owner's plans, oldest first (of one status, when given)."""
        found = [self.trading.load(pid, FundingPlan)
                 for pid, data in plans_opened(self.trading) if data["owner_id"] == owner_id]
        return [p for p in found if status is None or p.status is status]

    def plan(self, owner_id: str, plan_id: UUID) -> FundingPlan:
        """``NOT_FOUND`` for a plan that is not the owner's."""
        try:
            plan = self.trading.load(plan_id, FundingPlan)
        except NotFoundError:
            plan = None
        if plan is None or plan.owner_id != owner_id:
            raise NotFoundError(f"no funding plan {plan_id}", field="id")
        return plan

    def cancel(self, owner_id: str, plan_id: UUID, actor: str) -> FundingPlan:
        with self.paper.lock:
            plan = self.plan(owner_id, plan_id)
            plan.cancel(self.trading.cause(actor), "cancelled by its owner")
            self.trading.save_all(plan)
            return plan

    def open_plan_of(self, bot: Bot) -> FundingPlan | None:
        for pid, data in plans_opened(self.trading):
            if data["bot_id"] == str(bot.id):
                plan = self.trading.load(pid, FundingPlan)
                if plan.is_open:
                    return plan
        return None

    def plan_ids_by_account(self) -> dict[str, list[UUID]]:
        """Every plan's id by its account (one read of the log for a round of reviews)."""
        found: dict[str, list[UUID]] = {}
        for pid, data in plans_opened(self.trading):
            found.setdefault(data["account_id"], []).append(pid)
        return found

    def review(self, account: ExchangeAccount, cause: Cause,
               plan_ids: list[UUID] | None = None) -> list[FundingPlan]:
        """The account's open plans (of ``plan_ids``, when the caller knows them) judged
        against what it has now (the wallet monitor, after each observation): the ones
        whose status changed, saved."""
        if plan_ids is None:
            plan_ids = self.plan_ids_by_account().get(str(account.id), [])
        changed = []
        for pid in plan_ids:
            plan = self.trading.load(pid, FundingPlan)
            if plan.is_open and plan.observe(cause, self.available_for(
                    self.trading.get_bot(UUID(plan.bot_id)), account)):
                changed.append(plan)
        if changed:
            self.trading.save_all(*changed)
        return changed

    # --- plumbing -------------------------------------------------------------------------

    def _account(self, bot: Bot) -> ExchangeAccount | None:
        try:
            account = self.trading.get_account(UUID(bot.exchange_account_id))
        except (ValueError, NotFoundError):
            return None  # no account recorded (older bots): nothing to measure against
        if account.removed or (account.kind is AccountKind.LIVE and not account.observed):
            return None  # a live account never observed: its balance is unknown, not zero
        return account

    def _bots_of(self, owner_id: str) -> Iterator[Bot]:
        for bot_id in bots_owned_by(self.trading, owner_id):
            yield self.trading.get_bot(bot_id)


def plans_opened(trading: Trading) -> Iterator[tuple[UUID, dict]]:
    """Every plan's id with its ``Opened`` event's plain fields, oldest first."""
    return stored_fields(trading, get_topic(FundingPlan.Opened))
