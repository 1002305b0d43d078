"""Paper → live promotion: ``promoteBot(id, exchangeAccountId)`` moves a paper bot to a
live exchange account only when its paper record passes the gate (domain/promotion.py).

The record is computed from the bot's and its deals' events up to a moment, so asking
about a past moment (``promotionCheck(botId, asOf)``) answers what the gate said then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from uuid import UUID

from application.bot_commands import BotCommands, RefusedError
from application.exchange_accounts import trading_refusal
from application.user_views import Principal
from domain.accounts import AccountKind
from domain.bots import Bot, BotMode, BotStatus
from domain.deals import DealStatus
from domain.errors import DomainError, NotFoundError
from domain.money import ZERO
from domain.promotion import PaperRecord, PromotionRules, RuleOutcome, judge, missed

_RUNS = frozenset({"Started", "RiskResumed"})
_HALTS = frozenset({"Paused", "Stopped", "ErrorRaised", "RiskPaused", "PromotedToLive"})


@dataclass(frozen=True)
class PromotionCheck:
    bot_id: UUID
    as_of: datetime
    record: PaperRecord
    rules: list[RuleOutcome]

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)


def _events_until(trading, aggregate_id: UUID, as_of: datetime) -> list:
    return list(takewhile(lambda e: e.timestamp <= as_of, trading.events.get(aggregate_id)))


def paper_record(trading, bot_id: UUID, as_of: datetime) -> PaperRecord:
    """The bot's paper record from its events up to ``as_of`` (the promotion ends it)."""
    running_since, seconds, deal_ids = None, 0, []
    for event in _events_until(trading, bot_id, as_of):
        kind = type(event).__name__
        if kind == "Created" and event.mode is BotMode.LIVE:
            break  # a bot created live has no paper record
        if kind in _RUNS and running_since is None:
            running_since = event.timestamp
        elif kind in _HALTS and running_since is not None:
            seconds += _seconds(event.timestamp - running_since)
            running_since = None
        elif kind == "DealStarted":
            deal_ids.append(event.deal_id)
        if kind == "PromotedToLive":
            break
    else:
        if running_since is not None:
            seconds += _seconds(as_of - running_since)
    return _with_deals(trading, seconds, deal_ids, as_of)


def _seconds(delta) -> int:
    return delta.days * 86_400 + delta.seconds


def _with_deals(trading, seconds: int, deal_ids: list[UUID], as_of: datetime) -> PaperRecord:
    closed = wins = 0
    pnl = peak = ZERO
    for deal_id in deal_ids:
        deal = None
        for event in _events_until(trading, deal_id, as_of):
            deal = event.mutate(deal)
        if deal is None:
            continue
        peak = max(peak, deal.cost)  # what its buys spent: the base and filled safety orders
        if deal.status is DealStatus.CLOSED and deal.realized_pnl is not None:
            closed += 1
            wins += deal.realized_pnl > ZERO
            pnl += deal.realized_pnl
    return PaperRecord(seconds, closed, wins, pnl, peak)


class Promotion:
    """``promote`` under the runner's lock (a step never lands between the check and the
    move); ``check`` for any moment."""

    def __init__(self, bots: BotCommands, rules: PromotionRules):
        self.bots, self.rules = bots, rules
        self.trading = bots.trading

    def check(self, principal: Principal, bot_id: UUID | None,
              as_of: datetime | None = None) -> PromotionCheck:
        bot = self.bots.owned_bot(principal, bot_id)
        moment = as_of or self.trading.clock.now()
        record = paper_record(self.trading, bot.id, moment)
        return PromotionCheck(bot.id, moment, record, judge(record, self.rules))

    def promote(self, principal: Principal, bot_id: UUID | None,
                account_id: UUID | None) -> UUID:
        """Refused with every gate rule missed (``RefusedError``), or with the first
        problem of the bot or the account; a running bot comes out paused on the live
        account (``startBot`` trades it there)."""
        with self.bots.paper.lock:
            bot = self.bots.owned_bot(principal, bot_id)
            account = self._check_move(principal, bot, account_id)
            record = paper_record(self.trading, bot.id, self.trading.clock.now())
            problems = missed(record, self.rules)
            if problems:
                raise RefusedError(problems)
            self._check_account(principal, bot, account)
            cause = self.trading.cause(str(principal.user_id))
            if bot.status is BotStatus.RUNNING:
                bot.pause(cause)
            bot.promote_to_live(cause, str(account_id))
            self.trading.save_all(bot)
            self.bots.paper.unfollow(bot.id)  # its paper engine trades it no more
            return bot.id

    def _check_move(self, principal: Principal, bot: Bot, account_id: UUID | None):
        if bot.mode is BotMode.LIVE:
            raise DomainError("the bot already trades live", code="BOT_ALREADY_LIVE")
        if bot.status is BotStatus.STOPPED:
            raise DomainError("cannot promote a stopped bot", code="BOT_STOPPED")
        if bot.open_deal_id is not None:
            raise DomainError("the bot has an open paper deal: close it (closeDeal) or let "
                              "it finish first", code="DEAL_OPEN")
        try:
            account = self.trading.get_account(account_id) if account_id else None
        except NotFoundError:
            account = None
        if account is None or account.owner_id != str(principal.user_id) or account.removed:
            raise NotFoundError("no such exchange account of yours",
                                field="exchange_account_id")
        return account

    def _check_account(self, principal: Principal, bot: Bot, account) -> None:
        """After the gate: the account must be one this server trades live on."""
        if account.kind is not AccountKind.LIVE:
            raise DomainError("promotion moves a bot to a live exchange account; this one "
                              "is a paper account", code="LIVE_ACCOUNT_REQUIRED",
                              field="exchange_account_id")
        refusal = trading_refusal(account, self.bots.allow_live)
        if refusal is not None:
            raise refusal
        if not principal.email_verified:
            raise DomainError("verify your email address before trading live",
                              code="EMAIL_NOT_VERIFIED")
        self.bots._check_minimums(str(account.id), bot.config)
