"""The bot and deal commands a user gives (through GraphQL today; the CLI, webhooks and
workers call the same methods): each rule checked against the aggregates, never a view.

A bot or deal that is not the caller's is "not found" (never "forbidden"). A bot the paper
runner trades is changed only under its lock, so a command never lands between an engine's
decision and its save. Limits and name uniqueness live in the owner's roster (see
``application.bot_roster``), so they hold across server processes.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from application.bot_roster import MAX_BOTS_PER_USER, RefusedError
from application.exchange_accounts import trading_refusal
from application.paper_trading import PaperTrading
from application.trading import Trading
from application.user_views import Principal
from domain.accounts import AccountKind
from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.deals import DealStatus
from domain.errors import DomainError, NotFoundError
from domain.market_rules import quote_problem
from domain.text import text_problem
from domain.users import User

__all__ = ["BotCommands", "RefusedError", "bot_name_problems"]

BotLimit = Callable[[str], int]  # owner id -> how many bots that are not stopped they may have


def bot_name_problems(name: str) -> list[DomainError]:
    problem = text_problem(name, "name")
    if problem is not None:
        return [problem]
    if not 1 <= len(name.strip()) <= 64:
        return [DomainError("must be 1 to 64 characters", code="INVALID_BOT_NAME",
                            field="name")]
    return []


class BotCommands:
    def __init__(self, trading: Trading, paper: PaperTrading, *, traded_pair: str | None,
                 max_bots: BotLimit = lambda owner_id: MAX_BOTS_PER_USER,
                 allow_live: bool = False):
        """``allow_live``: bots may trade on live (non-sandbox) exchange accounts
        (``TRADETAPE_ALLOW_LIVE=1``)."""
        self.trading, self.paper = trading, paper
        self.traded_pair, self.max_bots = traded_pair, max_bots
        self.allow_live = allow_live

    # --- checks ---------------------------------------------------------------------------

    def owned_bot(self, principal: Principal, bot_id: UUID | None) -> Bot:
        try:
            bot = self.trading.get_bot(bot_id) if bot_id is not None else None
        except NotFoundError:
            bot = None
        if bot is None or bot.owner_id != str(principal.user_id):
            raise NotFoundError(f"no bot {bot_id}", field="id")
        return bot

    def check_pair(self, config: DcaConfig) -> None:
        """A replayed market trades one pair; a live market (None) any pair the exchange
        lists (an unlisted one is refused by the exchange's venue, PAIR_NOT_TRADED)."""
        if self.traded_pair is not None and config.pair != self.traded_pair:
            raise DomainError(f"this server's paper market trades {self.traded_pair} only",
                              code="PAIR_NOT_TRADED", field="pair")

    def _account_of(self, principal: Principal, account_id: str | None) -> str | None:
        """The exchange account the bot trades on, if it is the caller's."""
        if account_id is None:
            return str(self.trading.load(principal.user_id, User).paper_account_id)
        try:
            account = self.trading.get_account(UUID(account_id))
        except (ValueError, NotFoundError):
            return None
        mine = account.owner_id == str(principal.user_id) and not account.removed
        return account_id if mine else None

    # --- commands -------------------------------------------------------------------------

    def create_bot(self, principal: Principal, name: str, config: DcaConfig,
                   account_id: str | None = None) -> UUID:
        """A new paper bot (created, not started). ``RefusedError`` lists every reason:
        the name, the owner's limit, a duplicate name, an account not the caller's."""
        self.check_pair(config)
        owner = str(principal.user_id)
        account = self._account_of(principal, account_id)
        missing = [] if account is not None else [DomainError(
            "no such exchange account of yours", code="EXCHANGE_ACCOUNT_MISSING",
            field="exchange_account_id")]
        if bot_name_problems(name):
            raise RefusedError(bot_name_problems(name) + missing)
        if account is not None:
            self._check_minimums(account, config)
        return self.trading.create_bot(
            owner_id=owner, name=name.strip(), config=config,
            exchange_account_id=account or "", mode=self._mode_of(account), actor=owner,
            max_bots=self.max_bots(owner), other_problems=lambda: list(missing))

    def edit_bot(self, principal: Principal, bot_id: UUID | None, config: DcaConfig) -> UUID:
        self.check_pair(config)
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            self.trading.edit_bot_config(bot.id, config, actor=str(principal.user_id))
            return bot.id

    def update_bot(self, principal: Principal, bot_id: UUID | None, name: str | None,
                   config: DcaConfig | None) -> UUID:
        """A new name and/or configuration, each recorded as its own event; the
        configuration's ladder cannot change while a deal is open (DEAL_OPEN)."""
        if config is not None:
            self.check_pair(config)
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            actor = str(principal.user_id)
            if config is not None:
                bot.edit_config(self.trading.cause(actor), config)  # refused before anything
            if name is not None:
                self.trading.rename_bot(bot.id, name, actor=actor)
            if config is not None:
                self.trading.edit_bot_config(bot.id, config, actor=actor)
            return bot.id

    def delete_bot(self, principal: Principal, bot_id: UUID | None,
                   close_deal: bool = False) -> UUID:
        """Archive: with ``close_deal`` its open deal is sold at market first, otherwise an
        open deal refuses it (DEAL_OPEN)."""
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            actor = str(principal.user_id)
            if bot.open_deal_id is not None:
                if not close_deal:
                    raise DomainError("the bot has an open deal: close it first, or delete "
                                      "with closeDeal: true", code="DEAL_OPEN", field="id")
                self.paper.close_deal(bot.id, actor=actor)
            self.trading.archive_bot(bot.id, actor=actor)
            return bot.id

    def _check_minimums(self, account_id: str, config: DcaConfig) -> None:
        """On an exchange account, a base order below the exchange's minimum order value
        would be refused at every deal: refused now, by name."""
        rules = self.paper.market_rules(account_id, config.pair)
        if rules is None:
            return
        problem = quote_problem(rules, config.pair, config.base_order_quote, "base order")
        if problem is not None:
            code, _, message = problem.partition(": ")
            raise DomainError(message, code=code, field="base_order_quote")

    def _mode_of(self, account_id: str | None) -> BotMode:
        """A bot trades as its account does: live on an exchange account (sandbox or
        not), on paper otherwise."""
        try:
            account = self.trading.get_account(UUID(account_id or ""))
        except (ValueError, NotFoundError):
            return BotMode.PAPER
        return BotMode.LIVE if account.kind is AccountKind.LIVE else BotMode.PAPER

    def start_bot(self, principal: Principal, bot_id: UUID | None, live: bool = False) -> UUID:
        """A bot on a paper account trades on paper; one on an exchange account trades
        there (a verified email, a server with exchange adapters and, for a non-sandbox
        account, ``TRADETAPE_ALLOW_LIVE=1``)."""
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            self.check_account_trades(bot)
            if (live or bot.mode is BotMode.LIVE) and not principal.email_verified:
                raise DomainError("verify your email address before trading live",
                                  code="EMAIL_NOT_VERIFIED")
            if live and bot.mode is not BotMode.LIVE:
                raise DomainError("this bot trades on a paper account: create it on an "
                                  "exchange account to trade live",
                                  code="LIVE_ACCOUNT_REQUIRED")
            if bot.mode is BotMode.LIVE and self.paper.live_venues is None:
                raise DomainError("this server trades on paper only",
                                  code="LIVE_TRADING_UNAVAILABLE")
            self.trading.start_bot(bot.id, actor=str(principal.user_id))
            self.paper.follow(bot.id)
            return bot.id

    def check_account_trades(self, bot: Bot) -> None:
        """A bot on a removed account, or on a live (non-sandbox) one where this server
        does not allow live trading, does not start (``trading_refusal``)."""
        try:
            account = self.trading.get_account(UUID(bot.exchange_account_id))
        except (ValueError, NotFoundError):
            return  # no account recorded (older bots): the paper venue trades it
        refusal = trading_refusal(account, self.allow_live)
        if refusal is not None:
            raise refusal

    def pause_bot(self, principal: Principal, bot_id: UUID | None) -> UUID:
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            self.trading.pause_bot(bot.id, actor=str(principal.user_id))
            return bot.id

    def stop_bot(self, principal: Principal, bot_id: UUID | None,
                 close_deal: bool = False) -> UUID:
        """With ``close_deal``, the open deal is first sold at market; otherwise it runs on
        to its take profit or stop loss. The bot's slot and name are free again."""
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            actor = str(principal.user_id)
            if close_deal and bot.open_deal_id is not None:
                self.paper.close_deal(bot.id, actor=actor)
            self.trading.stop_bot(bot.id, actor=actor)
            return bot.id

    def reset_bot_error(self, principal: Principal, bot_id: UUID | None) -> UUID:
        with self.paper.lock:
            bot = self.owned_bot(principal, bot_id)
            self.trading.reset_bot_error(bot.id, actor=str(principal.user_id))
            return bot.id

    def set_listing(self, principal: Principal, bot_id: UUID | None, listed: bool) -> UUID:
        bot = self.owned_bot(principal, bot_id)
        self.trading.set_leaderboard_opt_in(bot.id, listed, actor=str(principal.user_id))
        return bot.id

    def close_deal(self, principal: Principal, deal_id: UUID | None) -> UUID:
        """Sell an open deal of the caller's at market now (the bot carries on)."""
        with self.paper.lock:
            try:
                deal = self.trading.get_deal(deal_id) if deal_id is not None else None
            except NotFoundError:
                deal = None
            if deal is None or deal.owner_id != str(principal.user_id):
                raise NotFoundError(f"no deal {deal_id}", field="id")
            if deal.status is not DealStatus.OPEN:
                raise DomainError(f"the deal is {deal.status}", code="DEAL_NOT_OPEN")
            self.paper.close_deal(deal.bot_id, actor=str(principal.user_id))
            return deal.id

