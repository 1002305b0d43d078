"""How often anyone may register, per address asking and per email address, over a sliding
window: registration is open to anyone and costs a password hash and a mail each time.

Counted after the input passed its rules (a refused input costs nothing to answer), whether
or not the email was registered already, so the limit itself tells nothing about an address.
Process memory, like the login limits (``login_limits``).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from math import ceil

from domain.errors import DomainError
from domain.ports import Clock


class TooManyRegistrationsError(DomainError):
    code = "TOO_MANY_REGISTRATIONS"

    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many registrations; try again in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class TooManyMailRequestsError(TooManyRegistrationsError):
    """Resend-verification and password-reset requests: each sends a mail."""

    code = "TOO_MANY_MAIL_REQUESTS"

    def __init__(self, retry_after_seconds: int):
        DomainError.__init__(self, f"too many requests for a mail; try again in "
                             f"{retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class RegistrationLimiter:
    """``error``: what a refusal raises (the limiter also serves requests for a mail)."""

    def __init__(self, clock: Clock, *, per_ip: int = 10, per_address: int = 3,
                 window: timedelta = timedelta(hours=1), max_keys: int = 100_000,
                 error: type[TooManyRegistrationsError] = TooManyRegistrationsError):
        self._clock, self._window, self._max_keys = clock, window, max_keys
        self._error = error
        self._limits = {"ip": per_ip, "address": per_address}
        self._attempts: dict[tuple[str, str], deque[datetime]] = {}

    def check(self, address: str, ip: str | None) -> None:
        now = self._clock.now()
        for key in _keys(address, ip):
            times = self._recent(key, now)
            if len(times) >= self._limits[key[0]]:
                wait = (times[0] + self._window - now).total_seconds()
                raise self._error(max(1, ceil(wait)))

    def record(self, address: str, ip: str | None) -> None:
        now = self._clock.now()
        if len(self._attempts) + 2 > self._max_keys:
            for key in list(self._attempts):
                if not self._recent(key, now):
                    del self._attempts[key]
            while self._attempts and len(self._attempts) + 2 > self._max_keys:
                del self._attempts[next(iter(self._attempts))]
        for key in _keys(address, ip):
            self._attempts.setdefault(key, deque()).append(now)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._attempts.get(key, deque())
        while times and times[0] + self._window <= now:
            times.popleft()
        return times


def _keys(address: str, ip: str | None) -> list[tuple[str, str]]:
    keys = [("address", address)]
    return [*keys, ("ip", ip)] if ip else keys
