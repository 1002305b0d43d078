"""What operators and administrators do to the whole system: the emergency stop (the trading
switch), and the system emergency stop (the switch, then every user's emergency exit).
Called by GraphQL (an admin user) and by ``tradetape emergency`` (an operator, from any
process).

A server's live loop reads the trading switch from the store before every candle, so a stop
recorded by another process halts its trading from the next candle on.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from application.trading import Trading

if TYPE_CHECKING:
    from application.emergency_exit import EmergencyExit, ExitReport
    from domain.system import TradingSwitch


class Operations:
    """``lock``: the paper runner's, in a server (so a switch never lands between an
    engine's decision and its save); none elsewhere."""

    def __init__(self, trading: Trading, lock: contextlib.AbstractContextManager | None = None,
                 emergency_exit: EmergencyExit | None = None):
        self.trading = trading
        self._lock = lock
        self._exit = emergency_exit

    def emergency_stop(self, reason: str, actor: str) -> TradingSwitch:
        """Every bot stops opening deals and placing orders until trading resumes."""
        with self._lock or contextlib.nullcontext():
            return self.trading.emergency_stop(reason, actor)

    def emergency_resume(self, actor: str, reason: str | None = None) -> TradingSwitch:
        with self._lock or contextlib.nullcontext():
            return self.trading.emergency_resume(actor, reason)

    def system_emergency_stop(self, reason: str, actor: str) -> ExitReport:
        """Trading halts (no deal opens anywhere), then every user's bots stop, their
        resting orders are cancelled and their holdings sold at market, under one
        correlation id. Trading stays halted until ``emergency_resume``."""
        from domain.errors import DomainError

        if self._exit is None:
            raise DomainError("this process cannot exit positions: run it on the server",
                              code="EMERGENCY_EXIT_UNAVAILABLE")
        with self._lock or contextlib.nullcontext():
            if not self.trading.is_halted():
                self.trading.emergency_stop(reason or "system emergency stop", actor)
            return self._exit.run_for_everyone(actor, reason)
