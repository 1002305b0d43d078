"""The simulator's control API for tests (JSON over HTTP, under ``/_simulator/``), served on
the control port (always up) and on the API port while it is up:

- ``GET /_simulator/state``: ``{"url", "now_ms", "speed", "down", "faults"}``
- ``POST /_simulator/faults`` ``{"kind", "times", "method", "path", "seconds", "execute",
  "status"}`` arms a fault (see :mod:`tests.exchange_simulator.faults`); ``GET`` lists the
  armed ones; ``DELETE`` disarms them all.
- ``POST /_simulator/down`` ``{"seconds": N | null}``: refuse connections for N seconds, or
  until ``POST /_simulator/up``.
- ``POST /_simulator/clock`` ``{"advance_ms": N}`` | ``{"set_ms": T}`` | ``{"speed": X}``
- ``POST /_simulator/deposit`` ``{"asset": "USDT", "amount": "100"}``
- ``GET /_simulator/ledger``: trades, orders, balances, initial balances and every create
  attempt by client order id (see :class:`tests.exchange_simulator.ledger.Ledger`).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.exchange_simulator.faults import Fault

if TYPE_CHECKING:
    from tests.exchange_simulator.http import Answer, SimulatorServer


def control_answer(simulator: SimulatorServer, method: str, path: str, body: str) -> Answer:
    try:
        data = json.loads(body) if body else {}
        return 200, _route(simulator, method, path, data), {}
    except (ValueError, TypeError, KeyError, InvalidOperation, OSError) as error:
        return 400, {"error": f"{type(error).__name__}: {error}"}, {}


def _route(simulator: SimulatorServer, method: str, path: str, data: dict[str, Any]) -> Any:
    matching = simulator.matching
    name = path.removeprefix("/_simulator/")
    if (method, name) == ("GET", "state"):
        return {"url": simulator.url, "now_ms": matching.now_ms(),
                "speed": matching.clock.speed, "down": simulator.is_down,
                "faults": simulator.faults.armed()}
    if (method, name) == ("GET", "faults"):
        return simulator.faults.armed()
    if (method, name) == ("POST", "faults"):
        simulator.faults.arm(Fault(**data))
        return simulator.faults.armed()
    if (method, name) == ("DELETE", "faults"):
        simulator.faults.clear()
        return []
    if (method, name) == ("POST", "down"):
        simulator.go_down(data.get("seconds"))
        return {"down": True}
    if (method, name) == ("POST", "up"):
        simulator.come_up()
        return {"down": simulator.is_down}
    if (method, name) == ("POST", "clock"):
        return _clock(simulator, data)
    if (method, name) == ("POST", "deposit"):
        matching.deposit(str(data["asset"]), Decimal(str(data["amount"])))
        return {"ok": True}
    if (method, name) == ("GET", "ledger"):
        return ledger_json(simulator)
    raise KeyError(f"no {method} {path}")


def _clock(simulator: SimulatorServer, data: dict[str, Any]) -> dict[str, int]:
    clock = simulator.matching.clock
    if "speed" in data:
        clock.set_speed(float(data["speed"]))
    if "set_ms" in data:
        clock.set(int(data["set_ms"]))
    if "advance_ms" in data:
        clock.advance(int(data["advance_ms"]))
    return {"now_ms": simulator.matching.catch_up()}


def ledger_json(simulator: SimulatorServer) -> dict[str, Any]:
    matching = simulator.matching
    with matching.lock:
        now = matching.catch_up()
        balances = matching.balances()
        return {
            "now_ms": now,
            "fee_rate": str(matching.fee_rate),
            "fee_mode": matching.fee_mode,
            "markets": {m.symbol: m.pair for m in matching.markets.values()},
            "initial_balances": {a: str(v) for a, v in matching.initial_balances.items()},
            "balances": {a: {"free": str(free), "locked": str(locked)}
                         for a, (free, locked) in balances.items()},
            "trades": [trade.as_json() for trade in matching.trades],
            "orders": [order.as_binance() for order in matching.orders.values()],
            "attempts": [vars(attempt).copy() for attempt in matching.attempts],
        }
