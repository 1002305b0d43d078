"""``python -m tests.exchange_simulator``: run the exchange simulator until interrupted.

Prints its URL on the first line (give it as TRADETAPE_SANDBOX_HOST) and the control URL on
the second (``control: http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from decimal import Decimal

from domain.errors import DomainError
from tests.exchange_simulator.runner import BTC_USDT_CANDLES, build_simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.exchange_simulator",
        description="A local exchange simulator speaking Binance's spot REST API (a fake for "
                    "tests, not Binance).")
    parser.add_argument("--candles", action="append", metavar="[PAIR=]FILE",
                        help="a candle CSV (the backtest's format), once per pair; the pair "
                             "comes from the name (..._BTC_USDT-1m...) unless given as "
                             "BTC/USDT=FILE (default: the shipped BTC/USDT month)")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--speed", type=float, default=0.0,
                        help="simulated seconds per wall second (0: the clock stands still)")
    parser.add_argument("--start-ms", type=int, help="simulated start time (UTC ms)")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT")
    parser.add_argument("--fee-rate", default="0.001")
    parser.add_argument("--fee-mode", choices=("binance", "quote"), default="binance",
                        help="binance: a buy pays its fee in base, a sell in quote; "
                             "quote: both in quote")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    candles = _candles(args.candles or [str(BTC_USDT_CANDLES)])
    balances = dict(_pair(item) for item in args.balance) or {"USDT": "10000"}
    try:
        server = build_simulator(candles, speed=args.speed, start_ms=args.start_ms,
                                 balances={a: Decimal(v) for a, v in balances.items()},
                                 fee_rate=Decimal(args.fee_rate), fee_mode=args.fee_mode,
                                 api_key=args.api_key, secret=args.secret)
        server.start(args.port, args.control_port)
    except (OSError, ValueError, ArithmeticError, DomainError) as error:
        print(f"exchange simulator: {error}", file=sys.stderr)
        return 1
    print(server.url, flush=True)
    print(f"control: {server.control_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


def _pair(item: str) -> tuple[str, str]:
    key, found, value = item.partition("=")
    if not found:
        raise SystemExit(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def _candles(items: list[str]) -> dict[str, str] | list[str]:
    if all("=" in item for item in items):
        return dict(_pair(item) for item in items)
    if any("=" in item for item in items):
        raise SystemExit("give every --candles as PAIR=FILE, or none")
    return items


if __name__ == "__main__":
    sys.exit(main())
