"""What an operator may tune about accounts, from ``TRADETAPE_*`` environment variables.

- ``TRADETAPE_STARTING_BALANCE``: the paper balance a new user starts with (default 10000)
- ``TRADETAPE_PUBLIC_URL``: where links in mails point (default: the address ``tradetape
  serve`` listens on, see ``listening_url``; http://127.0.0.1:8000 outside a server)
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
            values["public_url"] = _public_url(environ[PUBLIC_URL_ENV])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _public_url(text: str) -> str:
    url = text.strip().rstrip("/")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest or any(c.isspace() for c in url):
        raise DomainError(f"{PUBLIC_URL_ENV}={text!r} is not an http(s) URL like "
                          "https://trade.example.com", code="INVALID_PUBLIC_URL")
    return url


def _balance(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise DomainError(f"{STARTING_BALANCE_ENV}={text!r} is not an amount >= 0",
                          code="INVALID_STARTING_BALANCE")
    return value


def listening_url(host: str, port: int) -> str:
    """The base of links to a server listening on ``host:port``. A wildcard address
    (``0.0.0.0``, ``::``) is no place to send a browser: this machine's loopback stands in
    (set ``TRADETAPE_PUBLIC_URL`` for links that work from elsewhere)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:  # IPv6: in brackets in a URL
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}"
