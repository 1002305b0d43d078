"""Risk limits on a live (sandbox) account, against the local exchange simulator: the same
gate as on paper, and the exchange never sees the order that would pass a limit."""

from __future__ import annotations

from adapters.exchanges.paper import PaperExchange
from application.paper_trading import PaperTrading
from application.risk_limits import RiskLimits
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import LiveWorld, candles  # noqa: F401 (fixture)


class GatedLiveWorld(LiveWorld):
    def _runner(self) -> PaperTrading:
        self.risk = RiskLimits(self.trading)
        self.risk.set_limits("u1", {"maxPositionQuote": "160"}, actor="u1")
        runner = PaperTrading(self.trading, self.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=self._venues, risk=self.risk)
        runner.resume()
        return runner


def test_a_live_deal_sends_no_safety_order_past_the_position_limit(tmp_path, candles):  # noqa: F811
    with running_simulator(speed=0) as sim:
        world = GatedLiveWorld(f"sqlite:///{tmp_path / 'live.sqlite'}", sim)
        world.feed(candles, 0, 60)
        submitted = world.events("Submitted")
        assert {e.safety_order for e in submitted if str(e.side) == "buy"} == {0, 1}
        refused = world.events("RiskLimitReached")
        assert refused and {(e.safety_order, e.limit) for e in refused} == {
            (2, "maxPositionQuote")}
        # what the exchange received is exactly what the log says was sent (the venue
        # prefixes our client order ids with the broker's tag)
        seen = {client_id[-32:] for client_id in world.sim.client_order_ids_seen()}
        assert seen == {e.client_order_id for e in submitted}
        world.trading.close()
