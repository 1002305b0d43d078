"""Starting the exchange simulator from tests: in this process (:func:`running_simulator`, its
servers on threads) or as a process of its own (:func:`simulator_process`, so it outlives a
process a test kills). Both yield a :class:`SimulatorHandle`, which talks to the simulator's
control API over HTTP, so a test reads the same either way.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.exchange_simulator.http import SimulatorServer
from tests.exchange_simulator.ledger import Ledger
from tests.exchange_simulator.market import (
    Market,
    MarketFilters,
    SimulatedClock,
    load_market,
    pair_from_filename,
)
from tests.exchange_simulator.matching import Matching

ROOT = Path(__file__).resolve().parents[2]
BTC_USDT_CANDLES = ROOT / "adapters/marketdata/data/binance_BTC_USDT-1m-2025-11.csv"
Candles = str | Path | Sequence[str | Path] | Mapping[str, str | Path]


def build_simulator(candles: Candles = BTC_USDT_CANDLES, *, speed: float = 0.0,
                    start_ms: int | None = None,
                    balances: Mapping[str, str | Decimal] | None = None,
                    fee_rate: str | Decimal = "0.001", fee_mode: str = "binance",
                    api_key: str | None = None, secret: str | None = None,
                    filters: Mapping[str, MarketFilters] | None = None) -> SimulatorServer:
    """A simulator, not started yet. ``candles``: a file whose name tells its pair
    (``..._BTC_USDT-1m...csv``), several, or ``{"ETH/USDT": path}``. ``speed`` 0: the clock
    moves only when told. ``start_ms``: the first candle's open time unless given."""
    markets = _markets(candles, filters or {})
    first = min(m.first_open_ms for m in markets.values())
    clock = SimulatedClock(first if start_ms is None else start_ms, speed)
    initial = {a: Decimal(str(v)) for a, v in (balances or {"USDT": "10000"}).items()}
    matching = Matching(markets, clock, initial, Decimal(str(fee_rate)), fee_mode)
    return SimulatorServer(matching, api_key or "simkey" + secrets.token_hex(16),
                           secret or "simsecret" + secrets.token_hex(16))


def _markets(candles: Candles, filters: Mapping[str, MarketFilters]) -> dict[str, Market]:
    if isinstance(candles, Mapping):
        files = [(pair.upper(), path) for pair, path in candles.items()]
    else:
        paths = [candles] if isinstance(candles, str | Path) else list(candles)
        files = [("/".join(pair_from_filename(path)), path) for path in paths]
    loaded = [load_market(path, pair, filters.get(pair)) for pair, path in files]
    return {market.symbol: market for market in loaded}


class SimulatorHandle:
    """A test's hold on a running exchange simulator (give ``url`` as the sandbox host)."""

    def __init__(self, url: str, control_url: str, api_key: str, secret: str, *,
                 server: SimulatorServer | None = None,
                 process: subprocess.Popen[str] | None = None) -> None:
        self.url, self.control_url = url, control_url
        self.api_key, self.secret = api_key, secret
        self.server, self.process = server, process  # one of them, by how it was started

    def __repr__(self) -> str:  # never the keys
        return f"SimulatorHandle(url={self.url!r})"

    # --- the clock ----------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._call("GET", "state")["now_ms"]

    def advance(self, ms: int) -> int:
        """Move the simulated clock ``ms`` forward; fills what the candles passed crossed."""
        return self._call("POST", "clock", {"advance_ms": ms})["now_ms"]

    def set_time(self, now_ms: int) -> int:
        return self._call("POST", "clock", {"set_ms": now_ms})["now_ms"]

    def set_speed(self, speed: float) -> int:
        return self._call("POST", "clock", {"speed": speed})["now_ms"]

    # --- faults -------------------------------------------------------------------------

    def timeout(self, *, seconds: float, execute: bool, late: bool = False, times: int = 1,
                method: str | None = "POST", path: str | None = "/api/v3/order") -> None:
        """Hold the next ``times`` matching requests ``seconds``; carry them out (at once, or
        after the hold with ``late=True``) or not (then close without an answer)."""
        self._arm("timeout", times, method, path, seconds=seconds, execute=execute, late=late)

    def rate_limit(self, *, times: int = 1, method: str | None = None,
                   path: str | None = None, retry_after: float = 1, status: int = 429) -> None:
        """Answer the next ``times`` matching requests with 429 (or 418), Retry-After."""
        self._arm("rate_limit", times, method, path, seconds=retry_after, status=status)

    def lose_response(self, *, times: int = 1, method: str | None = "POST",
                      path: str | None = "/api/v3/order") -> None:
        """Carry out the next ``times`` matching requests, then drop their connections."""
        self._arm("lose_response", times, method, path)

    def backend_timeout(self, *, execute: bool, times: int = 1, method: str | None = "POST",
                        path: str | None = "/api/v3/order") -> None:
        """Answer the next ``times`` matching requests with Binance's 503 -1007 "execution
        status unknown", after carrying them out or not."""
        self._arm("backend_timeout", times, method, path, execute=execute)

    def refuse(self, *, times: int = 1, method: str | None = "DELETE",
               path: str | None = "/api/v3/order", status: int = 400,
               code: int = -1000) -> None:
        """Answer the next ``times`` matching requests with Binance's error ``code`` (HTTP
        ``status``), doing nothing: by default, cancels refused."""
        self._arm("refuse", times, method, path, status=status, code=code)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def go_down(self, seconds: float | None = None) -> None:
        """Refuse connections for ``seconds``, or until :meth:`come_up`."""
        self._call("POST", "down", {"seconds": seconds})

    def come_up(self) -> None:
        self._call("POST", "up")

    def _arm(self, kind: str, times: int, method: str | None, path: str | None,
             **extra: Any) -> None:
        self._call("POST", "faults", {"kind": kind, "times": times, "method": method,
                                      "path": path, **extra})

    # --- the books ----------------------------------------------------------------------

    def ledger(self) -> Ledger:
        return Ledger.from_json(self._call("GET", "ledger"))

    def client_order_ids_seen(self) -> Counter[str]:
        return self.ledger().client_order_ids_seen()

    def deposit(self, asset: str, amount: str | Decimal) -> None:
        self._call("POST", "deposit", {"asset": asset, "amount": str(amount)})

    def _call(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.control_url}/_simulator/{name}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"exchange simulator: {error.read().decode()}") from None


@contextmanager
def running_simulator(candles: Candles = BTC_USDT_CANDLES, **options: Any
                      ) -> Iterator[SimulatorHandle]:
    """The simulator on 127.0.0.1 (ports chosen by the system) in this process's threads.
    Options: those of :func:`build_simulator`."""
    server = build_simulator(candles, **options)
    server.start()
    try:
        yield SimulatorHandle(server.url, server.control_url, server.api_key, server.secret,
                              server=server)
    finally:
        server.stop()


@contextmanager
def simulator_process(candles: Candles = BTC_USDT_CANDLES, *, speed: float = 0.0,
                      start_ms: int | None = None,
                      balances: Mapping[str, str | Decimal] | None = None,
                      fee_rate: str | Decimal = "0.001", fee_mode: str = "binance",
                      api_key: str | None = None, secret: str | None = None
                      ) -> Iterator[SimulatorHandle]:
    """The simulator as a process of its own (``python -m tests.exchange_simulator``)."""
    api_key = api_key or "simkey" + secrets.token_hex(16)
    secret = secret or "simsecret" + secrets.token_hex(16)
    args = [sys.executable, "-m", "tests.exchange_simulator", "--port", "0", "--speed",
            str(speed), "--fee-rate", str(fee_rate), "--fee-mode", fee_mode,
            "--api-key", api_key, "--secret", secret]
    if start_ms is not None:
        args += ["--start-ms", str(start_ms)]
    for asset, amount in (balances or {"USDT": "10000"}).items():
        args += ["--balance", f"{asset}={amount}"]
    for item in _candle_args(candles):
        args += ["--candles", item]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        control = process.stdout.readline().strip().removeprefix("control: ")
        if not url.startswith("http://"):
            raise RuntimeError(f"the exchange simulator did not start (exit {process.wait()})")
        yield SimulatorHandle(url, control, api_key, secret, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _candle_args(candles: Candles) -> list[str]:
    if isinstance(candles, Mapping):
        return [f"{pair}={path}" for pair, path in candles.items()]
    paths = [candles] if isinstance(candles, str | Path) else list(candles)
    return [str(path) for path in paths]
