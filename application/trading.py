"""The Trading service: commands on bots, deals and orders, recorded in one event log."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from application.bot_roster import (
    MAX_BOTS_PER_USER,
    archive_and_release,
    enrol_new_bot,
    rename_in_roster,
    stop_and_release,
)
from application.transcodings import PrebuiltJSONTranscoder, register_domain_transcodings
from domain.accounts import AccountKind, ExchangeAccount
from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.deals import Deal
from domain.errors import ConcurrencyConflictError, DomainError, NotFoundError
from domain.ports import Clock, IdSource
from domain.recording import SYSTEM, Cause, TradetapeAggregate

if TYPE_CHECKING:
    from domain.system import TradingSwitch

A = TypeVar("A", bound=TradetapeAggregate)


class Trading(Application[UUID]):
    """One event-sourced application for the trading aggregates, so every decision of a bot,
    its deals and its orders lives in a single, totally ordered log."""

    name = "Trading"
    # Aggregates loaded again and again (a running bot every candle, a user on every
    # request) are kept and brought up to date with one read of their newer events, if
    # any, instead of being replayed from their first event (a bot's history grows by two
    # events a deal). Each load still hands out a copy, and still sees other writers'.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "5000",
                                     "AGGREGATE_CACHE_FASTFORWARD": "y"}

    def __init__(self, clock: Clock, ids: IdSource, env: dict[str, str] | None = None):
        super().__init__(env=env)
        self.clock, self.ids = clock, ids

    def construct_snapshot_store(self) -> Any:
        """Snapshots (when ``IS_SNAPSHOTTING_ENABLED``): a disposable cache, used only while
        they match their aggregate's code and events (``application.snapshots``)."""
        from application.snapshots import GuardedSnapshots

        return GuardedSnapshots(super().construct_snapshot_store(), self.events)

    def load_many(self, ids: Iterable[UUID], kind: type[A]) -> dict[UUID, A]:
        """Each of ``ids`` that is a ``kind``, by id, read in a few queries
        (``application.bulk_load``)."""
        from application.bulk_load import load_many

        return load_many(self, ids, kind)

    def construct_transcoder(self) -> PrebuiltJSONTranscoder:
        transcoder = PrebuiltJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    # --- plumbing -------------------------------------------------------------------------

    def cause(self, actor: str = SYSTEM, correlation_id: str | None = None) -> Cause:
        return Cause(self.clock.now(), actor, correlation_id or str(self.ids.new_id()))

    def load(self, aggregate_id: UUID, kind: type[A]) -> A:
        try:
            aggregate = self.repository.get(aggregate_id, projector_func=_project)
        except AggregateNotFoundError:
            raise NotFoundError(f"no {kind.__name__.lower()} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFoundError(f"no {kind.__name__.lower()} {aggregate_id}")
        return aggregate

    def save_all(self, *aggregates: TradetapeAggregate) -> None:
        """Append every pending event of ``aggregates`` in one transaction, or nothing."""
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrencyConflictError(
                "another writer changed this first; reload and try again"
            ) from None

    def append(self, *aggregates: TradetapeAggregate) -> int:
        """``save()`` for our own aggregates, for the engine's hot loop: the same recording,
        snapshotting and notifying, without ``save()``'s per-object ``isinstance`` checks
        against runtime-checkable Protocols (about 13 µs each on Python 3.11). Returns the
        number of events appended, all in one transaction."""
        processing = ProcessingEvent[UUID]()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        if not processing.events:
            return 0  # nothing to record: no empty transaction (the wallet monitor's rounds)
        return self._append(processing)

    def append_collected(self, events: list[TradetapeAggregate.Event]) -> int:
        """Append events already collected from their aggregates (several engine steps'
        worth, in the order they were decided) in one transaction. No snapshots are taken
        of their aggregates (Trading takes none)."""
        processing = ProcessingEvent[UUID]()
        processing.events.extend(events)
        return self._append(processing)

    def append_positions(self, events: list[TradetapeAggregate.Event]) -> list[int]:
        """``append_collected``, returning the positions in the log the events took, in
        order (empty where the store gives none: the memory store without notifications)."""
        processing = ProcessingEvent[UUID]()
        processing.events.extend(events)
        recordings = self._recordings(processing)
        positions = getattr(recordings, "positions", None)  # (batch_put: no Recording made)
        if positions is not None:
            return positions
        return [r.notification.id for r in recordings]

    def prepared_append(self, events: list[TradetapeAggregate.Event]
                        ) -> Callable[[], list[int]]:
        """``append_positions`` in two parts: what it computes before the database (the
        events mapped to stored ones, the statements' parameters and seals) done now, on
        this thread; the database's part returned, to be run later, maybe on another
        thread (the appends a heavy candle sends ahead). Where the event store cannot
        prepare (the library's own), all of it is left to the part returned."""
        prepare = getattr(self.events, "prepare", None)
        if prepare is None:
            return lambda: self.append_positions(events)
        prepared = prepare(events)

        def append() -> list[int]:
            try:
                recordings = self.events.put_prepared(prepared)
            except IntegrityError:
                raise ConcurrencyConflictError(
                    "another writer changed this first; reload and try again"
                ) from None
            self._notify(recordings)  # (as ``_recordings``; no aggregates to snapshot)
            return recordings.positions

        return append

    def _append(self, processing: ProcessingEvent[UUID]) -> int:
        return len(self._recordings(processing))

    def _recordings(self, processing: ProcessingEvent[UUID]) -> list:
        try:
            recordings = self._record(processing)
        except IntegrityError:
            raise ConcurrencyConflictError(
                "another writer changed this first; reload and try again"
            ) from None
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def _change(
        self, aggregate_id: UUID, kind: type[A], command: Callable[[A], Any], idempotent: bool
    ) -> A:
        """Load, decide, save. An idempotent command that lost a race is decided once more on
        fresh state; any other loser gets the conflict error."""
        for attempt in (1, 2):
            aggregate = self.load(aggregate_id, kind)
            command(aggregate)
            try:
                self.save_all(aggregate)
                return aggregate
            except ConcurrencyConflictError:
                if not idempotent or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # --- bots -----------------------------------------------------------------------------

    def create_bot(
        self,
        *,
        owner_id: str,
        name: str,
        config: DcaConfig,
        exchange_account_id: str,
        mode: BotMode = BotMode.PAPER,
        actor: str | None = None,
        max_bots: int = MAX_BOTS_PER_USER,
        other_problems: Callable[[], list[DomainError]] = list,
    ) -> UUID:
        """A new bot, enrolled in its owner's roster in the same transaction: refused
        (``RefusedError``, every reason listed) at ``max_bots`` bots that are not stopped,
        or when one of them has the same name."""
        cause = self.cause(actor or owner_id)

        def new_bot() -> Bot:
            return Bot.create(self.ids.new_id(), cause, name=name, owner_id=owner_id,
                              exchange_account_id=exchange_account_id, config=config,
                              mode=mode)

        return enrol_new_bot(self, owner_id, cause, max_bots, new_bot, other_problems).id

    def get_bot(self, bot_id: UUID) -> Bot:
        return self.load(bot_id, Bot)

    def get_deal(self, deal_id: UUID) -> Deal:
        return self.load(deal_id, Deal)

    def start_bot(self, bot_id: UUID, actor: str = SYSTEM) -> Bot:
        return self._change(bot_id, Bot, lambda b: b.start(self.cause(actor)), idempotent=False)

    def pause_bot(self, bot_id: UUID, actor: str = SYSTEM) -> Bot:
        return self._change(bot_id, Bot, lambda b: b.pause(self.cause(actor)), idempotent=False)

    def stop_bot(self, bot_id: UUID, actor: str = SYSTEM) -> Bot:
        """Stopped for good; its slot and name in the owner's roster are free again (in the
        same transaction)."""
        return stop_and_release(self, bot_id, self.cause(actor))

    def rename_bot(self, bot_id: UUID, name: str, actor: str = SYSTEM) -> Bot:
        return rename_in_roster(self, bot_id, name, self.cause(actor))

    def archive_bot(self, bot_id: UUID, actor: str = SYSTEM) -> Bot:
        """Deleted: stopped if it was not, kept with its history, listed nowhere."""
        return archive_and_release(self, bot_id, self.cause(actor))

    def fail_bot(self, bot_id: UUID, reason: str, actor: str = SYSTEM) -> Bot:
        return self._change(
            bot_id, Bot, lambda b: b.fail(self.cause(actor), reason), idempotent=False
        )

    def reset_bot_error(self, bot_id: UUID, actor: str = SYSTEM) -> Bot:
        return self._change(
            bot_id, Bot, lambda b: b.reset_error(self.cause(actor)), idempotent=False
        )

    def edit_bot_config(self, bot_id: UUID, config: DcaConfig, actor: str = SYSTEM) -> Bot:
        # Setting a configuration is idempotent: the same config twice records nothing.
        return self._change(
            bot_id, Bot, lambda b: b.edit_config(self.cause(actor), config), idempotent=True
        )

    def request_deal_close(self, bot_id: UUID, deal_id: UUID, reason: str, actor: str,
                           correlation_id: str | None = None) -> Bot:
        """For the engine worker that trades the bot (another process): sell this deal."""
        cause = self.cause(actor, correlation_id)
        return self._change(bot_id, Bot, lambda bot: bot.request_close(cause, deal_id, reason),
                            idempotent=True)

    def set_leaderboard_opt_in(self, bot_id: UUID, opted_in: bool, actor: str) -> Bot:
        return self._change(
            bot_id, Bot, lambda b: b.set_leaderboard_opt_in(self.cause(actor), opted_in),
            idempotent=True,
        )

    # --- exchange accounts ----------------------------------------------------------------

    def open_account(
        self,
        *,
        owner_id: str,
        exchange: str,
        quote_asset: str,
        kind: AccountKind = AccountKind.PAPER,
        actor: str | None = None,
    ) -> UUID:
        """A new exchange account; bots trade on it under ``exchange_account_id=str(id)``."""
        account = ExchangeAccount.open(
            self.ids.new_id(), self.cause(actor or owner_id), owner_id=owner_id, kind=kind,
            exchange=exchange, quote_asset=quote_asset,
        )
        self.save_all(account)
        return account.id

    def get_account(self, account_id: UUID) -> ExchangeAccount:
        return self.load(account_id, ExchangeAccount)

    def deposit(self, account_id: UUID, asset: str, amount: Decimal,
                actor: str = SYSTEM) -> ExchangeAccount:
        return self._change(account_id, ExchangeAccount,
                            lambda a: a.deposit(self.cause(actor), asset, amount),
                            idempotent=False)

    def withdraw(self, account_id: UUID, asset: str, amount: Decimal,
                 actor: str = SYSTEM) -> ExchangeAccount:
        return self._change(account_id, ExchangeAccount,
                            lambda a: a.withdraw(self.cause(actor), asset, amount),
                            idempotent=False)

    def observe_balance(self, account_id: UUID, asset: str, free: Decimal, locked: Decimal,
                        actor: str = SYSTEM) -> ExchangeAccount:
        return self._change(account_id, ExchangeAccount,
                            lambda a: a.observe_balance(self.cause(actor), asset, free, locked),
                            idempotent=False)

    # --- the trading switch ---------------------------------------------------------------

    def trading_switch(self) -> TradingSwitch | None:
        from domain.system import TRADING_SWITCH_ID, TradingSwitch  # servers only

        try:
            return self.load(TRADING_SWITCH_ID, TradingSwitch)
        except NotFoundError:
            return None

    def _switch(self, actor: str) -> TradingSwitch:
        from domain.system import TradingSwitch

        return self.trading_switch() or TradingSwitch.install(self.cause(actor))

    def is_halted(self) -> bool:
        switch = self.trading_switch()
        return switch is not None and switch.halted

    def emergency_stop(self, reason: str, actor: str) -> TradingSwitch:
        switch = self._switch(actor)
        switch.emergency_stop(self.cause(actor), reason)
        self.save_all(switch)
        return switch

    def emergency_resume(self, actor: str, reason: str | None = None) -> TradingSwitch:
        switch = self._switch(actor)
        switch.emergency_resume(self.cause(actor), reason)
        self.save_all(switch)
        return switch


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``isinstance`` against a
    runtime-checkable Protocol (an assert costing ~25 µs an event on Python 3.11: loading
    a bot with a hundred deals spent most of its time there). Ours all mutate."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
