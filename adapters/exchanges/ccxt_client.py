"""Builds ccxt exchange clients: the one place that knows how a Tradetape exchange account
(exchange id, sandbox or not, keys) becomes a configured ccxt object.

- ccxt is imported on first use (it takes ~0.5 s), so commands that never trade stay fast.
- Sandbox accounts use the exchange's testnet URLs (``set_sandbox_mode``); with
  ``TRADETAPE_SANDBOX_HOST=http://127.0.0.1:PORT`` the scheme and host of every sandbox URL
  are replaced, so the product runs unchanged against a local exchange simulator or a
  private gateway. The replacement never applies to a live (non-sandbox) account.
- Markets are loaded once per exchange (and sandbox host) and shared by every client of it:
  ccxt's ``load_markets`` is several requests and ~1 MB for Binance.
- One API key, several clients (the live venue's, the reconciliation's on its own thread,
  the key checks'), each with its own HTTP session and rate limiter, never one client on two
  threads: they share the key's :class:`KeyGate`. ccxt signs each private request with a
  nonce from the client's clock (Binance, Bybit, Kraken: milliseconds; its own
  ``incrementing_nonce`` is per client), so two clients of one key could sign the same
  nonce; the gate's nonce increases strictly across them. An exchange that takes a key's
  requests only in increasing nonce order (no receive window: Kraken's "Invalid nonce")
  gets them one at a time (the gate's lock around each request); one that checks a signed
  timestamp against a receive window (``recvWindow``: Binance, Bybit) in any order, so a
  slow request of one thread holds no other's.
"""

from __future__ import annotations

import decimal
import hashlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from domain.errors import DomainError

# Declared with the port it crosses (the application hands keys to the live runner);
# adapters may import it from here as before.
from domain.ports import ApiCredentials

SANDBOX_HOST_ENV = "TRADETAPE_SANDBOX_HOST"
_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]+", re.IGNORECASE)
# A key's gate that no client holds any more is dropped after this long unused.
GATE_IDLE_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 60.0


def isolated_decimals() -> AbstractContextManager[decimal.Context]:
    """Run ccxt inside this. ccxt's ``decimal_to_precision`` (every amount or price it
    rounds, in its helpers and inside ``create_order``) sets the thread's decimal context
    to ROUND_HALF_UP with Underflow trapped, and leaves it so: the engine's Decimal
    arithmetic in that thread would then round differently from a backtest's. A local
    copy of the context takes the change and is dropped on exit."""
    return decimal.localcontext()


def _isolate_decimals(client: Any) -> None:
    """Every rounding this client does runs in a copy of the decimal context. ccxt gives each
    instance its own ``decimal_to_precision`` attribute (set in ``Exchange.__init__``; all
    its rounding goes through it), so wrapping that attribute covers every caller: the
    venue, the feed, account checks."""
    rounding = client.decimal_to_precision

    def decimal_to_precision(*args: Any, **kwargs: Any) -> Any:
        with decimal.localcontext():
            return rounding(*args, **kwargs)

    client.decimal_to_precision = decimal_to_precision


def supported_exchanges() -> list[str]:
    import ccxt

    return list(ccxt.exchanges)


def exchange_class(exchange_id: str):
    """ccxt's class for ``exchange_id`` (lower case, as ccxt names it), or
    ``EXCHANGE_NOT_SUPPORTED``."""
    import ccxt

    name = (exchange_id or "").strip().lower()
    if name not in ccxt.exchanges:
        raise DomainError(f"{exchange_id!r} is not an exchange ccxt supports",
                          code="EXCHANGE_NOT_SUPPORTED", field="exchange")
    return getattr(ccxt, name)


def sandbox_host_from(env: dict[str, str]) -> str | None:
    host = (env.get(SANDBOX_HOST_ENV) or "").strip().rstrip("/")
    if not host:
        return None
    if not _HOST.match(host) or _HOST.sub("", host):
        raise DomainError(f"{SANDBOX_HOST_ENV}={host!r}: give a scheme and host such as "
                          "http://127.0.0.1:9100", code="INVALID_SETTING",
                          field=SANDBOX_HOST_ENV)
    return host


def _rewrite_hosts(urls: Any, host: str) -> Any:
    """Every URL in ccxt's (nested) ``urls['api']`` with its scheme and host replaced."""
    if isinstance(urls, str):
        return _HOST.sub(host, urls)
    if isinstance(urls, dict):
        return {key: _rewrite_hosts(value, host) for key, value in urls.items()}
    return urls


class KeyGate:
    """What every ccxt client of one API key shares: a nonce strictly increasing across
    them, and the lock an exchange without a receive window takes around each request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.RLock()  # one request of the key at a time (serialized)
        self._nonces = threading.Lock()
        self._last: int | float | None = None
        # the clients sharing it, held weakly: a gate is dropped only once none is left
        self._clients: list[weakref.ref[Any]] = []
        self._clock = clock
        self.last_used = clock()  # monotonic seconds: a client opened, a nonce signed

    def hold(self, client: Any) -> None:
        """``client`` shares this gate from now on (call with the table's lock held)."""
        self._clients = [*(ref for ref in self._clients if ref() is not None),
                         weakref.ref(client)]

    @property
    def in_use(self) -> bool:
        """A client of the key is still alive."""
        return any(ref() is not None for ref in self._clients)

    def nonce(self, native: Any) -> Any:
        """``native`` (the client's own nonce, in its unit), or one more than the last this
        key signed when that is not below it."""
        if not isinstance(native, int | float):
            return native
        with self._nonces:
            if self._last is not None and native <= self._last:
                native = self._last + 1
            self._last = native
            self.last_used = self._clock()
            return native


class _KeyGates:
    """The gates of the keys this process uses, one entry per key (its digest). An entry
    goes once no client of its key is left (the key checks' clients live for one call;
    the live runner drops an account's clients when it no longer trades it) and it has not
    been used for ``idle_seconds``: a client still alive always finds its key's gate, so
    two clients of one key never hold different gates, and a key back after an hour or more
    signs with its clock well past the last nonce the dropped gate gave. Each process has
    its own table (its clients are its own): pruning here touches no other process."""

    def __init__(self, idle_seconds: float = GATE_IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._gates: dict[tuple[str, bool, str | None, str], KeyGate] = {}
        self.idle_seconds, self._clock = idle_seconds, clock
        self._next_prune = clock()

    def of(self, exchange_id: str, sandbox: bool, host: str | None, api_key: str,
           client: Any) -> KeyGate:
        """The key's gate, shared with ``client`` (kept while the client lives)."""
        # the key's digest, not the key: nothing here is worth keeping in clear
        key = (exchange_id, sandbox, host, hashlib.sha256(api_key.encode()).hexdigest())
        now = self._clock()
        with self._lock:
            if now >= self._next_prune:  # a scan a minute, not one per client opened
                self._prune(now)
                self._next_prune = now + PRUNE_EVERY_SECONDS
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = KeyGate(self._clock)
            gate.hold(client)
            gate.last_used = max(gate.last_used, now)
            return gate

    def _prune(self, now: float) -> None:
        idle = [key for key, gate in self._gates.items()
                if not gate.in_use and now - gate.last_used >= self.idle_seconds]
        for key in idle:
            del self._gates[key]

    def __len__(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._gates)


KEY_GATES = _KeyGates()


def takes_requests_in_any_order(client: Any) -> bool:
    """The exchange checks each signed request's timestamp against a receive window (ccxt's
    ``recvWindow`` option: Binance, Bybit and others), not against the key's last nonce:
    its requests need not arrive in nonce order."""
    return client.options.get("recvWindow") is not None


def _share_key(client: Any, gate: KeyGate, serialize: bool) -> None:
    """The client's nonces drawn through ``gate``; with ``serialize``, each request (its
    rate limiter's wait, signing and the HTTP exchange) inside the gate's lock. ccxt sends
    every request through the instance's ``fetch2`` and signs with its ``nonce``."""
    native = client.nonce

    def nonce() -> Any:
        return gate.nonce(native())

    client.nonce = nonce
    if serialize:
        fetch2 = client.fetch2

        def fetch2_in_turn(*args: Any, **kwargs: Any) -> Any:
            with gate.lock:
                return fetch2(*args, **kwargs)

        client.fetch2 = fetch2_in_turn


class _MarketsCache:
    """Markets per (exchange, sandbox, host): loaded by the first client, shared after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._markets: dict[tuple[str, bool, str | None], tuple[Any, Any]] = {}

    def load(self, client: Any, key: tuple[str, bool, str | None], reload: bool) -> None:
        with self._lock:
            cached = None if reload else self._markets.get(key)
            if cached is not None:
                client.set_markets(*cached)
                return
            client.load_markets(reload=True)
            self._markets[key] = (client.markets, client.currencies)

    def clear(self) -> None:
        with self._lock:
            self._markets.clear()


MARKETS = _MarketsCache()


def open_client(exchange_id: str, *, sandbox: bool, credentials: ApiCredentials | None = None,
                sandbox_host: str | None = None, timeout_ms: int = 10_000,
                options: dict[str, Any] | None = None, serialize: bool | None = None) -> Any:
    """A ccxt client for one account. Nothing is requested yet (see :func:`load_markets`).
    With ``credentials``, it shares the key's :class:`KeyGate` with every other client of
    the key; ``serialize``: its requests one at a time with theirs (None: unless the
    exchange takes them in any order, :func:`takes_requests_in_any_order`)."""
    cls = exchange_class(exchange_id)
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
    if credentials is not None:
        config["apiKey"], config["secret"] = credentials.api_key, credentials.secret
        if credentials.password:
            config["password"] = credentials.password
    client = cls(config)
    _isolate_decimals(client)
    # Spot only: the engine trades spot, and Binance's futures endpoints (also asked by
    # load_markets unless told) have no testnet for spot keys.
    client.options["defaultType"] = "spot"
    fetch_markets = client.options.get("fetchMarkets")
    if isinstance(fetch_markets, dict) and "types" in fetch_markets:
        client.options["fetchMarkets"] = {**fetch_markets, "types": ["spot"]}
    # Our own fills and balances decide; ccxt must not ask endpoints a sandbox lacks.
    client.options["fetchCurrencies"] = False
    client.options.update(options or {})
    if sandbox:
        if not client.urls.get("test"):
            raise DomainError(f"{exchange_id} has no sandbox (testnet) in ccxt",
                              code="EXCHANGE_NOT_SUPPORTED", field="sandbox")
        client.set_sandbox_mode(True)
        if sandbox_host:
            client.urls["api"] = _rewrite_hosts(client.urls["api"], sandbox_host)
    if credentials is not None:
        gate = KEY_GATES.of(client.id, sandbox, sandbox_host if sandbox else None,
                            credentials.api_key, client)
        _share_key(client, gate, not takes_requests_in_any_order(client)
                   if serialize is None else serialize)
    return client


def load_markets(client: Any, *, sandbox: bool, sandbox_host: str | None = None,
                 reload: bool = False) -> dict[str, Any]:
    """The client's markets, from the shared cache when another client loaded them."""
    MARKETS.load(client, (client.id, sandbox, sandbox_host if sandbox else None), reload)
    return client.markets
