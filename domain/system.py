"""The trading switch: an administrator's emergency stop for every bot at once."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate
from domain.text import REASON_MAX, checked_text

TRADING_SWITCH_ID: UUID = uuid5(NAMESPACE_URL, "tradetape:trading-switch")


class TradingSwitch(TradetapeAggregate):
    halted: bool
    reason: str | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Installed(TradetapeAggregate.Created, Event):
        def apply(self, switch: TradingSwitch) -> None:
            switch.halted, switch.reason = False, None

    class EmergencyStopped(Event):
        reason: str

        def apply(self, switch: TradingSwitch) -> None:
            switch.halted, switch.reason = True, self.reason

    class EmergencyResumed(Event):
        # v1 had no reason: resumed without one.
        class_version = 2
        reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["reason"] = None

        def apply(self, switch: TradingSwitch) -> None:
            switch.halted, switch.reason = False, None

    @classmethod
    def install(cls, cause: Cause) -> TradingSwitch:
        return cls._start(cls.Installed, TRADING_SWITCH_ID, cause)

    def emergency_stop(self, cause: Cause, reason: str) -> None:
        if self.halted:
            raise InvalidTransitionError("trading is already halted", code="ALREADY_HALTED")
        reason = checked_text(reason, "reason", max_chars=REASON_MAX)
        self._record(self.EmergencyStopped, cause, reason=reason.strip() or "emergency stop")

    def emergency_resume(self, cause: Cause, reason: str | None = None) -> None:
        if not self.halted:
            raise InvalidTransitionError("trading is not halted", code="NOT_HALTED")
        self._record(self.EmergencyResumed, cause, reason=(reason or "").strip() or None)
