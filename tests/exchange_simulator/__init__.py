"""A local exchange simulator that speaks Binance's spot REST API on 127.0.0.1: a fake at the
network edge (not Binance) for tests and demos of live trading through ccxt.

It serves exchangeInfo, klines, time, account, order (create, cancel, get), openOrders and
myTrades; fills limit orders against candle files on a simulated clock; and, when told, times
out, rate-limits, loses a response after executing the order, or goes away.

    from tests.exchange_simulator import running_simulator

    with running_simulator(speed=0, balances={"USDT": "10000"}) as sim:
        client = open_client("binance", sandbox=True, sandbox_host=sim.url,
                             credentials=ApiCredentials(sim.api_key, sim.secret))
        ...
        sim.advance(60_000)
        sim.ledger().trades

From a shell: ``python -m tests.exchange_simulator --help`` (or ``scripts/exchange_simulator``).
"""

from tests.exchange_simulator.ledger import Ledger, LedgerTrade
from tests.exchange_simulator.market import MarketFilters, SimulatedClock
from tests.exchange_simulator.runner import (
    BTC_USDT_CANDLES,
    SimulatorHandle,
    build_simulator,
    running_simulator,
    simulator_process,
)

__all__ = [
    "BTC_USDT_CANDLES",
    "Ledger",
    "LedgerTrade",
    "MarketFilters",
    "SimulatedClock",
    "SimulatorHandle",
    "build_simulator",
    "running_simulator",
    "simulator_process",
]
