"""Errors the domain raises. Each carries a stable ``code`` that users and clients act on."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command. Nothing was recorded."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.code}{where}: {self.message}"


class FloatMoneyError(DomainError, TypeError):
    """A float reached money code: floats cannot represent prices exactly."""

    code = "FLOAT_NOT_ALLOWED"


class InvalidNumberError(DomainError, ValueError):
    code = "INVALID_NUMBER"


class InvalidConfigError(DomainError, ValueError):
    """One or more rules of a DCA configuration are violated; ``violations`` lists each."""

    code = "INVALID_CONFIG"

    def __init__(self, violations: list[DomainError]):
        self.violations = violations
        first = violations[0]
        super().__init__(
            "; ".join(str(v) for v in violations), code=self.code, field=first.field
        )


class InvalidTransitionError(DomainError):
    code = "INVALID_TRANSITION"


class OverfillError(DomainError):
    code = "ORDER_OVERFILL"


class LeaseLostError(DomainError):
    """An engine worker's append for bots whose lease it no longer holds: nothing was
    written (``application/leases.py``); ``bot_ids`` names them."""

    code = "LEASE_LOST"

    def __init__(self, message: str, bot_ids=()):
        super().__init__(message)
        self.bot_ids = list(bot_ids)


class ConcurrencyConflictError(DomainError):
    """Another writer changed the aggregate first; reload and decide again."""

    code = "CONCURRENT_MODIFICATION"


class ExposureChangedError(ConcurrencyConflictError):
    """An engine's append of buys judged on a user's exposure that another process changed
    since (a position opened meanwhile): nothing was written; decided again from the log
    (``application/exposure_holds.py``)."""

    code = "EXPOSURE_CHANGED"

    def __init__(self, message: str, owners=()):
        super().__init__(message)
        self.owners = list(owners)


class TurnLostError(DomainError):
    """A task that runs on one process of the deployment at a time lost its turn while it
    ran (its lock's connection dropped): it stops before its next write, since another
    process may be running it now."""

    code = "TASK_TURN_LOST"


class ExposureHeldError(ExposureChangedError):
    """An engine's append that waited its bounded time for a user's hold another process
    keeps (a position whose live exchange does not answer): nothing was written; those
    users' bots are deferred, the others' appended without them
    (``application/exposure_holds.py``)."""

    code = "EXPOSURE_HELD"


class NotFoundError(DomainError, LookupError):
    code = "NOT_FOUND"
