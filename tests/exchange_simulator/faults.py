"""Faults the simulator injects into its next matching requests (by method and path).

- ``timeout``: hold the request ``seconds`` (make it longer than the client's timeout). With
  ``execute=True`` the request is carried out at once and its answer sent after the hold (to a
  client that has usually gone), or with ``late=True`` carried out only after the hold (the
  client looking it up in between finds nothing); with ``execute=False`` nothing is done and,
  after the hold, the connection is closed without an answer.
- ``rate_limit``: answer ``status`` (429, or 418 for Binance's IP ban) with ``Retry-After:
  seconds`` and Binance's -1003 body; nothing is done.
- ``lose_response``: carry the request out, then close the connection without an answer.
- ``backend_timeout``: Binance's "execution status unknown" answer, HTTP 503 with
  ``{"code": -1007, ...}`` (ccxt raises RequestTimeout), after carrying the request out
  (``execute=True``) or not.
- ``refuse``: an error answer, HTTP ``status`` with Binance's ``{"code": code, ...}``
  (-1000, "unknown error", by default: ccxt raises OperationFailed, no retry); nothing is
  done. An exchange refusing to cancel an order, say.

``down`` (refusing connections) is not a per-request fault: see
:meth:`tests.exchange_simulator.http.SimulatorServer.go_down`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

KINDS = ("timeout", "rate_limit", "lose_response", "backend_timeout", "refuse")


@dataclass
class Fault:
    kind: str
    times: int = 1  # how many matching requests it hits
    method: str | None = None  # None: any method
    path: str | None = None  # e.g. "/api/v3/order"; None: any API path
    seconds: float = 1.0  # timeout: the hold; rate_limit: Retry-After
    execute: bool = True  # timeout, backend_timeout: carry the request out or not
    late: bool = False  # timeout with execute: carry it out after the hold, not before
    status: int = 429  # rate_limit: 429 or 418; refuse: any 4xx or 5xx
    code: int = -1000  # refuse only: Binance's error code in the answer

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.kind == "rate_limit" and self.status not in (418, 429):
            raise ValueError("a rate_limit fault answers 429 or 418")
        if self.kind == "refuse" and not 400 <= self.status < 600:
            raise ValueError("a refuse fault answers a 4xx or 5xx status")
        if self.method:
            self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        return self.method in (None, method) and self.path in (None, path)


class Faults:
    """Armed faults, consumed first-armed first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault for this request, counted as used."""
        with self._lock:
            for fault in self._armed:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._armed.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def armed(self) -> list[dict[str, object]]:
        with self._lock:
            return [asdict(fault) for fault in self._armed]
