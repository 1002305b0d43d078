"""The bot commands behind the mutations, run on a worker thread (``api.graphql.commands``).

Each checks ownership on the aggregate itself (a bot that is not the caller's is "not
found") and changes a bot the paper runner trades only under its lock. Refusals are raised
as :class:`Refused`, listing every problem found.
"""

from __future__ import annotations

import threading
from uuid import UUID

from application.runtime import Runtime
from application.user_views import Principal
from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.deals import DealStatus
from domain.errors import DomainError, NotFoundError
from projections import queries

BOT_LIMIT = 50  # bots per user that are not stopped
_creating = threading.Lock()  # a user's limit and names are checked and used atomically


class Refused(Exception):
    def __init__(self, errors: list[DomainError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def owned_bot(runtime: Runtime, principal: Principal, bot_id: UUID | None) -> Bot:
    try:
        bot = runtime.trading.get_bot(bot_id) if bot_id is not None else None
    except NotFoundError:
        bot = None
    if bot is None or bot.owner_id != str(principal.user_id):
        raise NotFoundError(f"no bot {bot_id}", field="id")
    return bot


def check_pair(runtime: Runtime, config: DcaConfig) -> None:
    traded = runtime.settings.feed_pair
    if config.pair != traded:
        raise DomainError(f"this server's paper market trades {traded} only",
                          code="PAIR_NOT_TRADED", field="pair")


def create_bot(runtime: Runtime, read, principal: Principal, name: str, config: DcaConfig,
               account_id: str | None) -> UUID:
    owner = str(principal.user_id)
    with _creating:
        problems: list[DomainError] = []
        active = read.run(queries.active_bots, owner)
        if len(active) >= BOT_LIMIT:
            problems.append(DomainError(f"you have {len(active)} bots that are not stopped: "
                                        f"stop one first (the limit is {BOT_LIMIT})",
                                        code="BOT_LIMIT_REACHED"))
        wanted = name.strip().casefold()
        if any(row["name"].strip().casefold() == wanted for row in active):
            problems.append(DomainError(f"you already have a bot named {name.strip()!r}",
                                        code="BOT_NAME_DUPLICATE", field="name"))
        account = _account(runtime, read, principal, account_id)
        if account is None:
            problems.append(DomainError("no such exchange account of yours",
                                        code="EXCHANGE_ACCOUNT_MISSING",
                                        field="exchange_account_id"))
        if problems:
            raise Refused(problems)
        bot_id = runtime.trading.create_bot(owner_id=owner, name=name, config=config,
                                            exchange_account_id=account,
                                            mode=BotMode.PAPER, actor=owner)
        runtime.refresh()  # the next creation sees this one in the views
        return bot_id


def _account(runtime: Runtime, read, principal: Principal, account_id: str | None
             ) -> str | None:
    if account_id is None:
        return str(runtime.identity.get_user(principal.user_id).paper_account_id)
    row = read.run(queries.accounts_by_id, [account_id]).get(account_id)
    return account_id if row is not None and row["owner_id"] == str(principal.user_id) else None


def edit_bot(runtime: Runtime, principal: Principal, bot_id: UUID | None,
             config: DcaConfig) -> UUID:
    with runtime.paper.lock:
        bot = owned_bot(runtime, principal, bot_id)
        runtime.trading.edit_bot_config(bot.id, config, actor=str(principal.user_id))
        return bot.id


def start_bot(runtime: Runtime, principal: Principal, bot_id: UUID | None, live: bool) -> UUID:
    """Paper by default. Live trading needs a verified email, and is not offered by this
    server yet (no live exchange adapter)."""
    with runtime.paper.lock:
        bot = owned_bot(runtime, principal, bot_id)
        if live or bot.mode is BotMode.LIVE:
            if not principal.email_verified:
                raise DomainError("verify your email address before trading live",
                                  code="EMAIL_NOT_VERIFIED")
            raise DomainError("this server trades on paper only", code="LIVE_TRADING_UNAVAILABLE")
        runtime.trading.start_bot(bot.id, actor=str(principal.user_id))
        runtime.paper.follow(bot.id)
        return bot.id


def pause_bot(runtime: Runtime, principal: Principal, bot_id: UUID | None) -> UUID:
    with runtime.paper.lock:
        bot = owned_bot(runtime, principal, bot_id)
        runtime.trading.pause_bot(bot.id, actor=str(principal.user_id))
        return bot.id


def stop_bot(runtime: Runtime, principal: Principal, bot_id: UUID | None,
             close_deal: bool) -> UUID:
    """With ``close_deal``, the open deal is first sold at market; otherwise it runs on to
    its take profit or stop loss."""
    with runtime.paper.lock:
        bot = owned_bot(runtime, principal, bot_id)
        actor = str(principal.user_id)
        if close_deal and bot.open_deal_id is not None:
            runtime.paper.close_deal(bot.id, actor=actor)
        runtime.trading.stop_bot(bot.id, actor=actor)
        return bot.id


def reset_bot_error(runtime: Runtime, principal: Principal, bot_id: UUID | None) -> UUID:
    with runtime.paper.lock:
        bot = owned_bot(runtime, principal, bot_id)
        runtime.trading.reset_bot_error(bot.id, actor=str(principal.user_id))
        return bot.id


def set_listing(runtime: Runtime, principal: Principal, bot_id: UUID | None,
                listed: bool) -> UUID:
    bot = owned_bot(runtime, principal, bot_id)
    runtime.trading.set_leaderboard_opt_in(bot.id, listed, actor=str(principal.user_id))
    return bot.id


def close_deal(runtime: Runtime, principal: Principal, deal_id: UUID | None) -> UUID:
    with runtime.paper.lock:
        try:
            deal = runtime.trading.get_deal(deal_id) if deal_id is not None else None
        except NotFoundError:
            deal = None
        if deal is None or deal.owner_id != str(principal.user_id):
            raise NotFoundError(f"no deal {deal_id}", field="id")
        if deal.status is not DealStatus.OPEN:
            raise DomainError(f"the deal is {deal.status}", code="DEAL_NOT_OPEN")
        runtime.paper.close_deal(deal.bot_id, actor=str(principal.user_id))
        return deal.id
