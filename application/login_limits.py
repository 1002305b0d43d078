"""Failed-login limits over a sliding window: they slow guessing down without locking the
account's owner out.

- per address and account: after ``per_account`` failures, that address may not try that
  account again until the window has passed (``TOO_MANY_ATTEMPTS``); the owner, from
  anywhere else, still logs in;
- per address: after ``per_ip`` failures on any accounts, that address may not try at all;
- per account, from every address together: no lock (anyone could lock anyone out with a
  few wrong passwords), but a growing delay before each further attempt is answered
  (``delay``: one second, doubling with each failure, at most ``max_delay``). The caller
  waits it out without holding a thread.

Which address a request comes from is only as good as the server's idea of it: proxy
headers are believed only from ``TRADETAPE_TRUSTED_PROXIES`` (see ``tradetape serve``).

Operational state, kept in this process's memory and NOT in the event log: it protects the
password check from guessing, it is not a fact about a user. So it is per process (several
server processes each count on their own) and a restart forgets it. Only failures count; a
successful login clears its account's counts (not its address's, so one known password does
not reset a guessing run against other accounts from that address).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from math import ceil

from domain.ports import Clock
from domain.users import AuthenticationError

_KEYS_PER_FAILURE = 3  # the address on the account, the address, the account


class TooManyAttemptsError(AuthenticationError):
    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many failed logins; try again in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class FailedLoginLimiter:
    def __init__(self, clock: Clock, *, per_account: int = 5, per_ip: int = 20,
                 window: timedelta = timedelta(minutes=15), max_keys: int = 100_000,
                 max_delay: float = 30.0):
        self._clock, self._window, self._max_keys = clock, window, max_keys
        self._limits = {"pair": per_account, "ip": per_ip}
        self._free_failures, self._max_delay = per_account, max_delay
        self._failures: dict[tuple[str, str], deque[datetime]] = {}

    def check(self, account: str, ip: str | None) -> None:
        """``TOO_MANY_ATTEMPTS`` if this address is over its limit, alone or on this
        account."""
        now = self._clock.now()
        for key in self._refusing_keys(account, ip):
            times = self._recent(key, now)
            if len(times) >= self._limits[key[0]]:
                wait = (times[0] + self._window - now).total_seconds()
                raise TooManyAttemptsError(max(1, ceil(wait)))

    def delay(self, account: str) -> float:
        """Seconds to wait before answering an attempt on ``account``: 0 until it has
        ``per_account`` recent failures (from any addresses), then 1, 2, 4, ... at most
        ``max_delay``."""
        failures = len(self._recent(("account", _account_key(account)), self._clock.now()))
        if failures < self._free_failures:
            return 0.0
        return min(self._max_delay, 2.0 ** (failures - self._free_failures))

    def record_failure(self, account: str, ip: str | None) -> None:
        now = self._clock.now()
        if len(self._failures) + _KEYS_PER_FAILURE > self._max_keys:
            self._prune(now)
        for key in (*self._refusing_keys(account, ip), ("account", _account_key(account))):
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, account: str, ip: str | None = None) -> None:
        for key in (("account", _account_key(account)), _pair(account, ip)):
            self._failures.pop(key, None)

    def _refusing_keys(self, account: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [_pair(account, ip)]
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
        while self._failures and len(self._failures) + _KEYS_PER_FAILURE > self._max_keys:
            del self._failures[next(iter(self._failures))]


def _pair(account: str, ip: str | None) -> tuple[str, str]:
    return ("pair", f"{ip or ''} {_account_key(account)}")


def _account_key(account: str) -> str:
    return (account or "").strip().lower()
