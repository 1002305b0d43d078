"""Reading the system's state (the trading switch is one small aggregate)."""

from __future__ import annotations

from api.graphql.system.types import SystemStatus
from application.public_health import health_seen_by, worst_status
from application.runtime import Runtime


def system_status(runtime: Runtime, token: str | None = None) -> SystemStatus:
    """``parts`` as ``/health`` shows them to the holder of ``token``: in full for an
    administrator, else without accounts or error text (application/public_health.py)."""
    switch = runtime.trading.trading_switch()
    parts, _ = health_seen_by(runtime.health, runtime.identity.authenticate, token)
    worst = worst_status(parts)
    return SystemStatus(halted=bool(switch and switch.halted),
                        reason=switch.reason if switch and switch.halted else None,
                        accepting_commands=runtime.accepting_commands, health=worst,
                        parts=parts)
