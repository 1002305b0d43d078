"""Real ccxt exchange classes with recorded HTTP answers, and no network.

ccxt's own offline tests use the same seam: every request goes ``request -> fetch2 ->
fetch``, so replacing the instance's ``fetch`` leaves everything above it real (symbol
mapping, request building and signing, the exchange's own parsers). ``FakeHttp`` stands at
that seam only: it answers from ccxt's recorded responses (tests/data/ccxt-static, see its
README for provenance and licence) and records what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from copy import deepcopy
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATIC = Path(__file__).parent / "data" / "ccxt-static"


@cache
def _load(kind: str, exchange_id: str) -> Any:
    return json.loads((STATIC / kind / f"{exchange_id}.json").read_text())


def recorded_case(exchange_id: str, method: str, description: str) -> dict[str, Any]:
    """One recorded case (a copy: tests may re-key it)."""
    for case in _load("response", exchange_id)["methods"][method]:
        if case["description"] == description:
            return deepcopy(case)
    raise KeyError(f"{exchange_id} {method} {description!r}")


def offline_client(exchange_id: str) -> Any:
    """A real ccxt client with the recorded markets and dummy keys; nothing can leave it
    (the proxies point at a closed local port, should anything pass the fake seam)."""
    import ccxt

    client = getattr(ccxt, exchange_id)({
        "apiKey": "key", "secret": "secretsecret", "enableRateLimit": False,
        "httpProxy": "http://127.0.0.1:9", "httpsProxy": "http://127.0.0.1:9"})
    client.options["defaultType"] = "spot"
    if exchange_id == "bybit":  # the recorded account is a unified one (no query for it)
        client.options.update(enableUnifiedMargin=False, enableUnifiedAccount=True)
    markets = []
    for recorded in _load("markets", exchange_id).values():
        market = dict(recorded)
        precision = dict(market.get("precision") or {})
        # The binance file at this commit gives decimals (5), current ccxt tick sizes.
        for key in ("amount", "price"):
            if isinstance(precision.get(key), int) and exchange_id == "binance":
                precision[key] = f"1e-{precision[key]}"
        market["precision"] = precision
        markets.append(client.safe_market_structure(market))
    client.set_markets(markets)
    return client


class FakeHttp:
    """The network edge: answers each request with the first route whose method and URL
    fragment match. An answer is a body, an exception to raise, or a callable of the
    request returning either. ``sent`` lists ``(method, url)`` of every request."""

    def __init__(self, client: Any):
        self.routes: list[tuple[str, str, Any]] = []
        self.sent: list[tuple[str, str]] = []
        self.bodies: list[Any] = []
        client.fetch = self.fetch

    def on(self, method: str, fragment: str, answer: Any) -> FakeHttp:
        self.routes.append((method, fragment, answer))
        return self

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.sent.append((method, url))
        self.bodies.append(body)
        for want_method, fragment, answer in self.routes:
            if want_method == method and fragment in url:
                reply = answer(url, body) if callable(answer) else answer
                if isinstance(reply, BaseException):
                    raise reply
                return deepcopy(reply)
        raise AssertionError(f"no recorded answer for {method} {url}")

    @property
    def last_body(self) -> dict[str, Any]:
        """The parameters of the last request: its JSON body, or its form and query."""
        body = self.bodies[-1]
        if isinstance(body, str) and body.startswith("{"):
            return json.loads(body)
        return query_of(self.sent[-1][1], body)

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, url in self.sent if m == method and fragment in url)


def query_of(url: str, body: Any = None) -> dict[str, str]:
    """The parameters of a request (query string or form body)."""
    text = urlsplit(url).query or ""
    if isinstance(body, str) and "=" in body:
        text = f"{text}&{body}"
    return {key: values[0] for key, values in parse_qs(text).items()}


Answer = Callable[[str, Any], Any]
