"""Bot mutations: each answers the bot as the views now show it, or ``BotErrors`` (a bot
that is not the caller's is ``NOT_FOUND``, never "forbidden")."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.bots.inputs import DcaConfigInput
from api.graphql.bots.plan import config_errors
from api.graphql.bots.types import Bot, BotErrors, BotResult
from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error, parse_uuid
from api.graphql.permissions import IsAuthenticated
from application.bot_commands import BotCommands, RefusedError, bot_name_problems
from application.user_views import Principal
from domain.dca import DcaConfig
from domain.errors import DomainError, InvalidConfigError
from domain.text import text_problem


@strawberry.input
class UpdateBotInput:
    name: str | None = None
    config: DcaConfigInput | None = None


def checked_config(info: Info, config: DcaConfigInput) -> DcaConfig | list[FieldError]:
    try:
        parsed = config.to_config()
        info.context.runtime.bots.check_pair(parsed)
    except InvalidConfigError as error:
        return config_errors(error)
    except DomainError as error:
        return [FieldError(code="INVALID_CONFIG", message=error.message, field="pair",
                           rule=error.code)]
    return parsed


async def run(info: Info, command: Callable[[BotCommands, Principal], UUID]) -> BotResult:
    """Run ``command(bot_commands, principal)``; answer the bot, or why it was refused."""
    ctx = info.context
    principal = ctx.principal
    try:
        bot_id = await execute(ctx.runtime, lambda: command(ctx.runtime.bots, principal))
    except RefusedError as refused:
        return BotErrors.of([field_error(e) for e in refused.errors])
    except DomainError as error:
        return BotErrors.of([field_error(error)])
    row = await ctx.fresh_loaders().bots.load(str(bot_id))  # what the command changed
    return Bot.from_row(row)


@strawberry.type
class BotMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A new bot (created, not started) on your paper account unless told otherwise"))
    async def create_bot(self, info: Info, name: str, config: DcaConfigInput,
                         exchange_account_id: strawberry.ID | None = None) -> BotResult:
        parsed = checked_config(info, config)
        if isinstance(parsed, list):  # the name's problems too, all at once
            return BotErrors.of([*map(field_error, bot_name_problems(name)), *parsed])
        account = None if exchange_account_id is None else str(exchange_account_id)
        problem = None if account is None else text_problem(account, "exchange_account_id")
        if problem is not None:
            return BotErrors.of([field_error(problem)])
        return await run(info, lambda bots, principal: bots.create_bot(
            principal, name, parsed, account))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def edit_bot(self, info: Info, id: strawberry.ID,
                       config: DcaConfigInput) -> BotResult:
        parsed = checked_config(info, config)
        if isinstance(parsed, list):
            return BotErrors.of(parsed)
        return await run(info, lambda bots, principal: bots.edit_bot(
            principal, parse_uuid(id), parsed))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A new name and/or configuration, each recorded as an event of the bot; while a "
        "deal is open its ladder (pair, order sizes, deviation, scales, max safety orders) "
        "cannot change (DEAL_OPEN)"))
    async def update_bot(self, info: Info, id: strawberry.ID,
                         input: UpdateBotInput) -> BotResult:
        parsed = None if input.config is None else checked_config(info, input.config)
        problems = [] if input.name is None else list(map(field_error, bot_name_problems(
            input.name)))
        if isinstance(parsed, list) or problems:
            return BotErrors.of([*problems, *(parsed if isinstance(parsed, list) else [])])
        return await run(info, lambda bots, principal: bots.update_bot(
            principal, parse_uuid(id), input.name, parsed))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A new name (unique among your bots that are not stopped)"))
    async def rename_bot(self, info: Info, id: strawberry.ID, name: str) -> BotResult:
        problems = bot_name_problems(name)
        if problems:
            return BotErrors.of([field_error(p) for p in problems])
        return await run(info, lambda bots, principal: bots.update_bot(
            principal, parse_uuid(id), name, None))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Delete: the bot is stopped and archived (its deals and history are kept, lists "
        "leave it out); an open deal refuses it (DEAL_OPEN) unless closeDeal sells it first"))
    async def delete_bot(self, info: Info, id: strawberry.ID,
                         close_deal: bool | None = False) -> BotResult:
        return await run(info, lambda bots, principal: bots.delete_bot(
            principal, parse_uuid(id), bool(close_deal)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Start (or restart a paused) bot, on paper unless live is asked for"))
    async def start_bot(self, info: Info, id: strawberry.ID,
                        live: bool | None = False) -> BotResult:
        return await run(info, lambda bots, principal: bots.start_bot(
            principal, parse_uuid(id), bool(live)))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def pause_bot(self, info: Info, id: strawberry.ID) -> BotResult:
        return await run(info, lambda bots, principal: bots.pause_bot(
            principal, parse_uuid(id)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Stop for good; closeDeal sells the open deal at market first"))
    async def stop_bot(self, info: Info, id: strawberry.ID,
                       close_deal: bool | None = False) -> BotResult:
        return await run(info, lambda bots, principal: bots.stop_bot(
            principal, parse_uuid(id), bool(close_deal)))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def reset_bot_error(self, info: Info, id: strawberry.ID) -> BotResult:
        return await run(info, lambda bots, principal: bots.reset_bot_error(
            principal, parse_uuid(id)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Show (or hide) the bot's results on the public leaderboard"))
    async def set_leaderboard_listing(self, info: Info, id: strawberry.ID,
                                      listed: bool) -> BotResult:
        return await run(info, lambda bots, principal: bots.set_listing(
            principal, parse_uuid(id), listed))
