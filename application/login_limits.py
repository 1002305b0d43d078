"""Failed-login limits, per account and per IP address, over a sliding window.

Operational state, kept in this process's memory and NOT in the event log: it protects the
password check from guessing, it is not a fact about a user. So it is per process (several
server processes each count on their own) and a restart forgets it. Only failures count; a
successful login clears its account's count (not its IP's, so one known password does not
reset a guessing run against other accounts from that IP).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from math import ceil

from domain.ports import Clock
from domain.users import AuthenticationError


class TooManyAttemptsError(AuthenticationError):
    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many failed logins; try again in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class FailedLoginLimiter:
    def __init__(self, clock: Clock, *, per_account: int = 5, per_ip: int = 20,
                 window: timedelta = timedelta(minutes=15), max_keys: int = 100_000):
        self._clock, self._window, self._max_keys = clock, window, max_keys
        self._limits = {"account": per_account, "ip": per_ip}
        self._failures: dict[tuple[str, str], deque[datetime]] = {}

    def check(self, account: str, ip: str | None) -> None:
        """Raise ``TOO_MANY_ATTEMPTS`` if either the account or the IP is over its limit."""
        now = self._clock.now()
        for key in self._keys(account, ip):
            times = self._recent(key, now)
            if len(times) >= self._limits[key[0]]:
                wait = (times[0] + self._window - now).total_seconds()
                raise TooManyAttemptsError(max(1, ceil(wait)))

    def record_failure(self, account: str, ip: str | None) -> None:
        now = self._clock.now()
        if len(self._failures) >= self._max_keys:
            self._prune(now)
        for key in self._keys(account, ip):
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, account: str) -> None:
        self._failures.pop(("account", _account_key(account)), None)

    def _keys(self, account: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [("account", _account_key(account))]
        return [*keys, ("ip", ip)] if ip else keys

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and times[0] + self._window <= now:
            times.popleft()
        return times

    def _prune(self, now: datetime) -> None:
        """Drop keys with no recent failure; if still full, the oldest keys (memory bound
        under a flood of made-up accounts or addresses)."""
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        while len(self._failures) >= self._max_keys:
            del self._failures[next(iter(self._failures))]


def _account_key(account: str) -> str:
    return (account or "").strip().lower()
