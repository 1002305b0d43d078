"""What precision a market shows its numbers in, for display: an account's exchange rules
for a pair (price tick, amount step), remembered, since asking may mean a request to the
exchange. Paper accounts trade any amount at any price: they have none.

A market found is kept for the process's life (exchanges change steps rarely, and a display
form is only ever for showing); an answer of "none" is asked again after ``retry_seconds``,
since it may only mean the exchange could not be reached just then."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from domain.errors import DomainError
from domain.ports import MarketRules

log = logging.getLogger("tradetape.markets")
RETRY_SECONDS = 60.0


class MarketPrecision:
    def __init__(self, rules_of: Callable[[str, str], MarketRules | None], *,
                 retry_seconds: float = RETRY_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic):
        """``rules_of(account_id, pair)``: the rules, None where the account has none."""
        self._rules_of, self._retry, self._monotonic = rules_of, retry_seconds, monotonic
        self._known: dict[tuple[str, str], tuple[MarketRules | None, float]] = {}
        self._lock = threading.Lock()

    def remembered(self, account_id: str, pair: str) -> tuple[bool, MarketRules | None]:
        """``(True, rules)`` when known without asking anyone, else ``(False, None)``."""
        with self._lock:
            found = self._known.get((account_id, pair))
        if found is None or (found[0] is None and self._monotonic() >= found[1]):
            return False, None
        return True, found[0]

    def rules(self, account_id: str, pair: str) -> MarketRules | None:
        """The rules, asking the account's exchange when not remembered (may block)."""
        known, rules = self.remembered(account_id, pair)
        if known:
            return rules
        try:
            rules = self._rules_of(account_id, pair)
        except DomainError as error:  # a pair the exchange does not list: none to show
            log.warning("no market rules for %s on account %s: %s", pair, account_id,
                        error.code)
            rules = None
        with self._lock:
            self._known[(account_id, pair)] = (rules, self._monotonic() + self._retry)
        return rules
