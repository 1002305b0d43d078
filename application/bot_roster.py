"""Creating and stopping bots together with their owner's :class:`BotRoster`, safely across
processes: the bot and the roster are saved in one transaction, and a writer that lost the
race for the roster's next version loads it again and decides again on fresh state.

Every way a bot is created or stopped (the API, the CLI, the demo, the engine) goes through
``Trading.create_bot`` / ``Trading.stop_bot``, which come here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from domain.bots import Bot, BotStatus
from domain.errors import ConcurrencyConflictError, DomainError, NotFoundError
from domain.recording import Cause
from domain.rosters import BotRoster, roster_id

if TYPE_CHECKING:
    from application.trading import Trading

# How many bots that are not stopped one owner may have, unless told otherwise (the
# server's TRADETAPE_MAX_BOTS_PER_USER; a plan's maxBots later).
MAX_BOTS_PER_USER = 50
# Each lost race means another writer's bot was saved, so the attempts needed are bounded
# by the writers racing for one owner; a refusal writes nothing and ends the race.
ATTEMPTS = 64


class RefusedError(DomainError):
    """A command refused for one or more reasons; ``errors`` lists each."""

    def __init__(self, errors: list[DomainError]):
        super().__init__("; ".join(e.message for e in errors), code=errors[0].code,
                         field=errors[0].field)
        self.errors = errors


def roster_of(trading: Trading, owner_id: str, cause: Cause) -> BotRoster:
    """The owner's roster as stored, or a new one (not yet saved) holding the owner's bots
    that are not stopped, oldest first: the same for every process that builds it."""
    try:
        return trading.load(roster_id(owner_id), BotRoster)
    except NotFoundError:
        pass
    from application.user_views import bots_owned_by

    bots = {}
    for bot_id in bots_owned_by(trading, owner_id):
        bot = trading.get_bot(bot_id)
        if bot.status is not BotStatus.STOPPED:
            bots[str(bot.id)] = bot.name
    return BotRoster.open(owner_id, cause, bots)


def release_stopped(trading: Trading, roster: BotRoster, cause: Cause) -> None:
    """Free the slots of bots the roster holds that were stopped some other way (the
    aggregate decides, not the roster's memory of it)."""
    for bot_id in list(roster.bots):
        try:
            stopped = trading.get_bot(UUID(bot_id)).status is BotStatus.STOPPED
        except NotFoundError:
            stopped = True
        if stopped:
            roster.release(cause, UUID(bot_id))


def enrol_new_bot(trading: Trading, owner_id: str, cause: Cause, max_bots: int,
                  new_bot: Callable[[], Bot],
                  other_problems: Callable[[], list[DomainError]] = list) -> Bot:
    """``new_bot()``, enrolled in its owner's roster and saved with it; or ``RefusedError``
    listing every problem (``other_problems()`` included)."""
    for _ in range(ATTEMPTS):
        bot = new_bot()
        roster = roster_of(trading, owner_id, cause)
        problems = roster.problems(bot.name, max_bots)
        if problems:  # perhaps only because a bot was stopped without telling the roster
            release_stopped(trading, roster, cause)
            problems = roster.problems(bot.name, max_bots)
        problems += other_problems()
        if problems:
            raise RefusedError(problems)
        roster.enrol(cause, bot.id, bot.name, max_bots)
        try:
            trading.save_all(bot, roster)
            return bot
        except ConcurrencyConflictError:
            continue  # another writer changed the roster first: decide again
    raise ConcurrencyConflictError("too many writers at once for this owner's bots; "
                                   "try again")


def stop_and_release(trading: Trading, bot_id: UUID, cause: Cause) -> Bot:
    """Stop the bot and free its slot and name in its owner's roster, in one transaction;
    after a lost race, decided again on the bot as it now is."""
    return _with_roster(trading, bot_id, cause, lambda bot, roster: (
        bot.stop(cause), roster.release(cause, bot.id)))


def rename_in_roster(trading: Trading, bot_id: UUID, name: str, cause: Cause) -> Bot:
    """Rename the bot, and its entry in its owner's roster (where names are unique), in one
    transaction."""
    return _with_roster(trading, bot_id, cause, lambda bot, roster: (
        bot.rename(cause, name), roster.rename(cause, bot.id, bot.name)))


def archive_and_release(trading: Trading, bot_id: UUID, cause: Cause) -> Bot:
    """Stop the bot if it is not, archive it and free its slot and name, in one
    transaction."""
    def archive(bot: Bot, roster: BotRoster) -> None:
        if bot.status is not BotStatus.STOPPED and not bot.archived:
            bot.stop(cause)
        bot.archive(cause)
        roster.release(cause, bot.id)

    return _with_roster(trading, bot_id, cause, archive)


def _with_roster(trading: Trading, bot_id: UUID, cause: Cause,
                 change: Callable[[Bot, BotRoster], object]) -> Bot:
    for _ in range(ATTEMPTS):
        bot = trading.get_bot(bot_id)
        roster = roster_of(trading, bot.owner_id, cause)
        change(bot, roster)
        try:
            trading.save_all(bot, roster)
            return bot
        except ConcurrencyConflictError:
            continue
    raise ConcurrencyConflictError("the bot kept changing meanwhile; try again")
