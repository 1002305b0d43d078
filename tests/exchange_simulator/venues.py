"""A live venue on the simulator, as the composition root builds one for a sandbox account."""

from __future__ import annotations

from application.live_venue import LiveVenue


def simulator_venue(sim, account_id: str, pair: str) -> LiveVenue:
    from adapters.exchanges.ccxt_venue import CcxtExchange  # ccxt: slow to import
    from domain.ports import ApiCredentials

    exchange = CcxtExchange.open("binance", sandbox=True, sandbox_host=sim.url,
                                 credentials=ApiCredentials(sim.api_key, sim.secret))
    # the simulator sets no request weight limit: ccxt's pacing for Binance (50 ms between
    # requests) would only make tests slow
    exchange.client.rateLimit = 1
    return LiveVenue(exchange, pair, account_id=account_id, sandbox=True)
