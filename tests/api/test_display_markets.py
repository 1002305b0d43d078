"""Display forms in the market's precision where the market is known: a bot on a sandbox
account of the local exchange simulator (Binance's real BTCUSDT filters: amount step
0.00001, tick 0.01) shows its amounts to 5 decimals, where a paper bot's show the 8 of
BTC's minor unit; the exact figures are the same strings either way."""

from __future__ import annotations

from decimal import Decimal

from tests.api.conftest import CREATE_BOT
from tests.api.test_display import places
from tests.api.test_exchange_accounts import ADD, _config, keys, server, sim  # noqa: F401

DEAL = """query($id: ID!) { bot(id: $id) { openDeal { units unitsDisplay averageEntry
  averageEntryDisplay orders { amount amountDisplay price priceDisplay } } } }"""


def _deal(server, account, bot_id):  # noqa: F811 (the fixture)
    server.start_bot(account, bot_id)
    server.step()
    deal = server.gql(DEAL, {"id": bot_id}, account.token)["bot"]["openDeal"]
    assert deal is not None
    return deal


def test_a_live_markets_amounts_show_its_amount_step(server, sim):  # noqa: F811
    alice = server.user("alice")
    live = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    on_exchange = server.gql(CREATE_BOT, {"name": "testnet", "config": _config(),
                                          "account": live}, alice.token)["createBot"]["id"]
    on_paper = server.create_bot(alice, "paper")

    live_deal = _deal(server, alice, on_exchange)
    paper_deal = _deal(server, alice, on_paper)

    assert places(live_deal["unitsDisplay"]) == 5 and places(paper_deal["unitsDisplay"]) == 8
    assert abs(Decimal(live_deal["unitsDisplay"]) - Decimal(live_deal["units"])) <= (
        Decimal("0.000005"))
    assert all(places(o["amountDisplay"]) == 5 for o in live_deal["orders"])
    assert all(places(o["amountDisplay"]) == 8 for o in paper_deal["orders"])
    resting = [o for o in live_deal["orders"] if o["price"] is not None]
    assert resting and all(places(o["priceDisplay"]) == 2 for o in resting)
    assert places(live_deal["averageEntryDisplay"]) == 2
