"""What an operator may tune about accounts, from ``TRADETAPE_*`` environment variables.

- ``TRADETAPE_STARTING_BALANCE``: the paper balance a new user starts with (default 10000)
- ``TRADETAPE_PUBLIC_URL``: where links in mails point (default http://127.0.0.1:8000)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from domain.errors import DomainError

STARTING_BALANCE_ENV = "TRADETAPE_STARTING_BALANCE"
PUBLIC_URL_ENV = "TRADETAPE_PUBLIC_URL"


@dataclass(frozen=True)
class IdentitySettings:
    starting_balance: Decimal = Decimal("10000")
    quote_asset: str = "USDT"
    paper_exchange: str = "paper"
    access_token_lifetime: timedelta = timedelta(minutes=15)
    public_url: str = "http://127.0.0.1:8000"
    failed_logins_per_account: int = 5
    failed_logins_per_ip: int = 20
    failed_login_window: timedelta = timedelta(minutes=15)
    registrations_per_ip: int = 10
    registrations_per_address: int = 3
    registration_window: timedelta = timedelta(hours=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None,
                     **overrides: object) -> IdentitySettings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if environ.get(STARTING_BALANCE_ENV):
            values["starting_balance"] = _balance(environ[STARTING_BALANCE_ENV])
        if environ.get(PUBLIC_URL_ENV):
            values["public_url"] = environ[PUBLIC_URL_ENV].rstrip("/")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _balance(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise DomainError(f"{STARTING_BALANCE_ENV}={text!r} is not an amount >= 0",
                          code="INVALID_STARTING_BALANCE")
    return value
