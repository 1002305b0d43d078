"""Who an event says acted. Every event carries an ``actor``:

- a user: their id (``"6f1c…"``), for what they did through the API;
- an operator at the command line: ``"operator:NAME"`` (``--actor NAME``, else the OS user);
- a webhook: ``"webhook:NAME"``;
- the engine: ``"engine"``; the server itself (e.g. a demo it seeds): ``"system"``.
"""

from __future__ import annotations

from domain.errors import DomainError
from domain.recording import ENGINE, SYSTEM

__all__ = ["ENGINE", "OPERATOR", "SYSTEM", "WEBHOOK", "operator", "webhook"]

OPERATOR = "operator:"
WEBHOOK = "webhook:"
MAX_NAME = 64


def operator(name: str) -> str:
    """The actor recorded for an operator's command line action."""
    return OPERATOR + _checked(name, "actor")


def webhook(name: str) -> str:
    return WEBHOOK + _checked(name, "webhook")


def _checked(name: str, field: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not name.isprintable() or any(
            c.isspace() for c in name):
        raise DomainError(f"an actor name is 1 to {MAX_NAME} printable characters without "
                          f"spaces, not {name[:MAX_NAME]!r}", code="INVALID_ACTOR", field=field)
    return name
