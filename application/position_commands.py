"""What every position command shares: the state (the store, the paper runner whose lock
they run under, the index of positions, the owner's risk limits) and the steps around a
command (its cause, its save, the market price, the checks of who may act on what)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from uuid import UUID

from application.paper_trading import PaperTrading
from application.position_desk import PositionDesk
from application.position_index import PositionIndex
from application.trading import Trading
from domain.errors import DomainError, NotFoundError
from domain.positions import Position
from domain.recording import Cause

MAX_OPEN_POSITIONS = 100  # an owner's open or pending positions
MAX_EXITS = 10  # active exits of one position
# (owner, quote a buy adds[, what its position commits already]) -> or raise
RiskCheck = Callable[..., None]


class PositionCommands:
    def __init__(self, trading: Trading, paper: PaperTrading, *,
                 traded_pair: str | None = None, allow_live: bool = False,
                 risk_check: RiskCheck | None = None):
        """``risk_check``: the owner's risk limits (application/risk_limits.py), called
        before any order of a new position is sent, and before a buy trailing stop is added
        to one; None: no limits."""
        self.trading, self.paper, self.traded_pair = trading, paper, traded_pair
        self.allow_live, self.risk_check = allow_live, risk_check
        self.max_open_positions, self.max_exits = MAX_OPEN_POSITIONS, MAX_EXITS
        self.index = PositionIndex(trading)

    def _hold(self, owner_id: UUID) -> AbstractContextManager[None]:
        """The owner's hold for a new position's check and write, when the risk check
        has one (``PositionGate.hold``: other processes' buys of theirs wait for it)."""
        hold = getattr(self.risk_check, "hold", None)
        return hold(owner_id) if hold is not None else nullcontext()

    def _begin(self, desk: PositionDesk, owner_id: UUID) -> Cause:
        cause = self.trading.cause(str(owner_id))
        desk.begin_step(cause)
        return cause

    def _save(self, desk: PositionDesk, *also) -> list:
        changes = desk.take_changes()
        for aggregate in also:
            if aggregate not in changes:
                changes.append(aggregate)
        self.paper.save_aggregates(changes)
        self.index.catch_up()
        return changes

    def _price(self, desk: PositionDesk) -> Decimal:
        price = getattr(desk.venue, "price", None)
        if price is None:
            raise DomainError("no market price yet: try again after the next candle",
                              code="NO_MARKET_PRICE")
        return price

    def _check_not_halted(self) -> None:
        """An emergency stop: no order that buys or rests is placed (closing still sells)."""
        if self.trading.is_halted():
            raise DomainError("trading is halted by an operator's emergency stop",
                              code="TRADING_HALTED")

    def _owned(self, owner_id: UUID, aggregate_id: UUID | None, kind, name: str):
        try:
            found = self.trading.load(aggregate_id, kind) if aggregate_id else None
        except NotFoundError:
            found = None
        if found is None or found.owner_id != str(owner_id):
            raise NotFoundError(f"no {name} {aggregate_id}", field="id")
        return found

    def _open_position(self, owner_id: UUID,
                       position_id: UUID | None) -> tuple[Position, PositionDesk]:
        stored = self._owned(owner_id, position_id, Position, "position")
        desk = self.paper.desk(stored.exchange_account_id, stored.pair)
        position = desk.positions.get(stored.id)
        if position is None or not position.is_open:
            raise DomainError(f"the position is {stored.status}", code="POSITION_NOT_OPEN")
        return position, desk
