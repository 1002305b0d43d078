"""Which peers may say who the client is: ``TRADETAPE_TRUSTED_PROXIES``.

A proxy in front of the server tells the client's address in ``X-Forwarded-For``; anyone
else could put any address there, and the per-address login limits would count nothing.
So the header is believed only from the addresses or networks listed (comma-separated, e.g.
``127.0.0.1,10.0.0.0/8``); by default from no one, whatever uvicorn's own default says
(it trusts loopback). ``*`` trusts every peer: only behind a proxy that always replaces the
header and is the only way in.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from domain.errors import DomainError

TRUSTED_PROXIES_ENV = "TRADETAPE_TRUSTED_PROXIES"


def trusted_proxies(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The trusted peers, each an address, a network or ``*``; empty: none."""
    environ = os.environ if environ is None else environ
    entries = tuple(e.strip() for e in environ.get(TRUSTED_PROXIES_ENV, "").split(",")
                    if e.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise DomainError(f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an IP address or "
                              "network (e.g. 127.0.0.1,10.0.0.0/8)", code="INVALID_SETTING",
                              field=TRUSTED_PROXIES_ENV) from None
    return entries
