"""Reading the system's state (the trading switch is one small aggregate)."""

from __future__ import annotations

from api.graphql.system.types import SystemStatus
from application.runtime import Runtime


def system_status(runtime: Runtime) -> SystemStatus:
    switch = runtime.trading.trading_switch()
    parts = runtime.health()
    statuses = {p["status"] for p in parts.values()}
    worst = "red" if "red" in statuses else "amber" if "amber" in statuses else "green"
    return SystemStatus(halted=bool(switch and switch.halted),
                        reason=switch.reason if switch and switch.halted else None,
                        accepting_commands=runtime.accepting_commands, health=worst,
                        parts=parts)
