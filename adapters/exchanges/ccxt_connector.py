"""``ExchangeConnector`` through ccxt: an account's keys checked by fetching its balances.

One authenticated request (``fetch_balance``, after the exchange's markets, shared through
``ccxt_client.load_markets``), on a client of its own that lives only for the call (its
nonces, and its turn where the exchange needs one, shared with the live venue's and the
reconciliation's clients of the same key: ``ccxt_client.KeyGate``). ccxt's
errors become one named code (``ccxt_errors.translate``); the message never carries a key.
Amounts are read as ccxt's strings (``client.number = str``), so no float reaches a
balance.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.exchanges.ccxt_client import load_markets, open_client
from adapters.exchanges.ccxt_errors import translate
from domain.errors import DomainError
from domain.ports import ApiCredentials, Balance, ExchangeConnector

DOING = "checking the account's keys"


class CcxtExchangeConnector(ExchangeConnector):
    def __init__(self, *, sandbox_host: str | None = None, timeout_ms: int = 10_000,
                 client_factory: Callable[..., Any] = open_client):
        """``sandbox_host``: ``TRADETAPE_SANDBOX_HOST`` (read by the composition root);
        ``client_factory``: ``open_client``'s signature (tests replay recorded answers)."""
        self._sandbox_host, self._timeout_ms = sandbox_host, timeout_ms
        self._open = client_factory

    def verify(self, exchange: str, sandbox: bool,
               credentials: ApiCredentials) -> dict[str, Balance]:
        import ccxt

        client = self._open(exchange, sandbox=sandbox, credentials=credentials,
                            sandbox_host=self._sandbox_host, timeout_ms=self._timeout_ms)
        client.number = str  # unified amounts as the exchange's decimal strings
        try:
            if not client.markets:  # else given by the factory (recorded markets)
                load_markets(client, sandbox=sandbox, sandbox_host=self._sandbox_host)
            answer = client.fetch_balance()
        except ccxt.BaseError as error:
            raise translate(error, DOING) from None
        finally:
            _forget_keys(client)
        return balances_of(answer)


def balances_of(answer: dict[str, Any]) -> dict[str, Balance]:
    """ccxt's unified balance (``free``/``used`` by currency) as ours; assets holding
    nothing are left out."""
    free, used = answer.get("free") or {}, answer.get("used") or {}
    found = {}
    for asset in sorted(set(free) | set(used)):
        balance = Balance(_amount(free.get(asset), asset), _amount(used.get(asset), asset))
        if balance.total:
            found[asset.upper()] = balance
    return found


def _amount(value: Any, asset: str) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, float):  # a client not reading strings: never guess a decimal
        raise TypeError(f"the exchange's {asset} balance came as a float")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise DomainError(f"the exchange reported {asset} as {value!r}, not a number",
                          code="EXCHANGE_ERROR") from None
    # Nothing is 0, however many decimals the exchange wrote it with (not "0E-8").
    return amount if amount.is_finite() and amount else Decimal(0)


def _forget_keys(client: Any) -> None:
    """The client object may outlive the call (a traceback, a cache): drop its keys."""
    for attribute in ("apiKey", "secret", "password"):
        if getattr(client, attribute, None):
            setattr(client, attribute, "")
