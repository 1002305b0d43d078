"""Reading the system's state (the trading switch is one small aggregate)."""

from __future__ import annotations

from api.graphql.system.types import SystemStatus
from application.public_health import admin_token, public_health
from application.runtime import Runtime


def system_status(runtime: Runtime, token: str | None = None) -> SystemStatus:
    """``parts`` as ``/health`` shows them to the holder of ``token``: in full for an
    administrator, else without accounts or error text (application/public_health.py)."""
    switch = runtime.trading.trading_switch()
    parts = runtime.health()
    if not admin_token(runtime.identity.authenticate, token):
        parts = public_health(parts)
    statuses = {p["status"] for p in parts.values()}
    worst = "red" if "red" in statuses else "amber" if "amber" in statuses else "green"
    return SystemStatus(halted=bool(switch and switch.halted),
                        reason=switch.reason if switch and switch.halted else None,
                        accepting_commands=runtime.accepting_commands, health=worst,
                        parts=parts)
