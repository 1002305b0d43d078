"""The BotRoster aggregate: one owner's bots that are not stopped, with their names.

It is what makes "at most N bots, no two with one name" hold across processes: a new bot is
enrolled in the same transaction that creates it, and a stopped bot is released in the same
transaction that stops it. Two writers deciding on the same roster version cannot both be
saved (the store refuses the second event at that version), so the loser decides again on
fresh state. The id follows from the owner, so every process finds the same roster.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
from domain.recording import Cause, TradetapeAggregate


def roster_id(owner_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:bot-roster:{owner_id}")


def name_key(name: str) -> str:
    """Names are compared as people read them: " Scalper" and "scalper" are one name."""
    return name.strip().casefold()


class BotRoster(TradetapeAggregate):
    owner_id: str
    bots: dict[str, str]  # bot id (text) -> name, oldest first

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Opened(TradetapeAggregate.Created, Event):
        """``bots``: the owner's bots that were not stopped when the roster was first
        needed (stores older than rosters hold bots and no roster)."""

        owner_id: str
        bots: dict[str, str]

        def apply(self, roster: BotRoster) -> None:
            roster.owner_id, roster.bots = self.owner_id, dict(self.bots)

    class BotEnrolled(Event):
        bot_id: UUID
        name: str

        def apply(self, roster: BotRoster) -> None:
            roster.bots[str(self.bot_id)] = self.name

    class BotReleased(Event):
        """The bot was stopped: its slot and its name are free again."""

        bot_id: UUID

        def apply(self, roster: BotRoster) -> None:
            roster.bots.pop(str(self.bot_id), None)

    class BotRenamed(Event):
        bot_id: UUID
        name: str

        def apply(self, roster: BotRoster) -> None:
            if str(self.bot_id) in roster.bots:
                roster.bots[str(self.bot_id)] = self.name

    @classmethod
    def open(cls, owner_id: str, cause: Cause, bots: dict[str, str]) -> BotRoster:
        return cls._start(cls.Opened, roster_id(owner_id), cause, owner_id=owner_id,
                          bots=dict(bots))

    # --- rules ----------------------------------------------------------------------------

    def problems(self, name: str, max_bots: int) -> list[DomainError]:
        """Why a new bot named ``name`` may not join (empty: it may)."""
        found = []
        if len(self.bots) >= max_bots:
            found.append(DomainError(
                f"you have {len(self.bots)} bots that are not stopped: stop one first "
                f"(the limit is {max_bots})", code="BOT_LIMIT_REACHED"))
        if self.holder_of(name) is not None:
            found.append(DomainError(f"you already have a bot named {name.strip()!r}",
                                     code="BOT_NAME_DUPLICATE", field="name"))
        return found

    def holder_of(self, name: str) -> str | None:
        """The id (text) of the bot holding ``name``, if any."""
        wanted = name_key(name)
        return next((bot for bot, held in self.bots.items() if name_key(held) == wanted), None)

    # --- commands -------------------------------------------------------------------------

    def enrol(self, cause: Cause, bot_id: UUID, name: str, max_bots: int) -> None:
        problems = self.problems(name, max_bots)
        if problems:
            raise problems[0]
        self._record(self.BotEnrolled, cause, bot_id=bot_id, name=name.strip())

    def rename(self, cause: Cause, bot_id: UUID, name: str) -> None:
        """A bot the roster holds takes ``name`` (no other bot of the owner may hold it);
        one it does not hold (stopped) records nothing."""
        if str(bot_id) not in self.bots:
            return
        holder = self.holder_of(name)
        if holder is not None and holder != str(bot_id):
            raise DomainError(f"you already have a bot named {name.strip()!r}",
                              code="BOT_NAME_DUPLICATE", field="name")
        if self.bots[str(bot_id)] != name.strip():
            self._record(self.BotRenamed, cause, bot_id=bot_id, name=name.strip())

    def release(self, cause: Cause, bot_id: UUID) -> None:
        """Releasing a bot the roster does not hold records nothing."""
        if str(bot_id) in self.bots:
            self._record(self.BotReleased, cause, bot_id=bot_id)
