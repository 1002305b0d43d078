"""What operators and administrators do to the whole system: the emergency stop. Called by
GraphQL (an admin user) and by ``tradetape emergency`` (an operator, from any process).

A server's live loop reads the trading switch from the store before every candle, so a stop
recorded by another process halts its trading from the next candle on.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from application.trading import Trading

if TYPE_CHECKING:
    from domain.system import TradingSwitch


class Operations:
    """``lock``: the paper runner's, in a server (so a switch never lands between an
    engine's decision and its save); none elsewhere."""

    def __init__(self, trading: Trading, lock: contextlib.AbstractContextManager | None = None):
        self.trading = trading
        self._lock = lock

    def emergency_stop(self, reason: str, actor: str) -> TradingSwitch:
        """Every bot stops opening deals and placing orders until trading resumes."""
        with self._lock or contextlib.nullcontext():
            return self.trading.emergency_stop(reason, actor)

    def emergency_resume(self, actor: str, reason: str | None = None) -> TradingSwitch:
        with self._lock or contextlib.nullcontext():
            return self.trading.emergency_resume(actor, reason)
