"""Display forms beside the exact amounts: quantized to the currency's minor unit (cents
for USDT, 8 decimals for BTC), while the exact Decimal strings stay as they are."""

from __future__ import annotations

from decimal import Decimal

from tests.api.test_queries import traded

QUERY = """query($id: ID!) {
  portfolio { realizedPnl realizedPnlDisplay fees feesDisplay
    balances { asset total totalDisplay free freeDisplay } }
  bot(id: $id) { openDeal { units unitsDisplay averageEntry averageEntryDisplay
    orders { price priceDisplay amount amountDisplay } } } }"""


def places(text: str) -> int:
    return len(text.partition(".")[2])


def test_amounts_have_a_display_form_in_their_currencys_minor_unit(server):
    alice, bot_id = traded(server)
    found = server.gql(QUERY, {"id": bot_id}, alice.token)
    portfolio = found["portfolio"]
    for exact, shown in (("realizedPnl", "realizedPnlDisplay"), ("fees", "feesDisplay")):
        assert places(portfolio[shown]) == 2
        assert abs(Decimal(portfolio[shown]) - Decimal(portfolio[exact])) <= Decimal("0.005")
        assert places(portfolio[exact]) > 2  # the exact figure is untouched
    balances = {b["asset"]: b for b in portfolio["balances"]}
    assert places(balances["USDT"]["totalDisplay"]) == 2
    assert places(balances["BTC"]["totalDisplay"]) == 8
    deal = found["bot"]["openDeal"]
    assert places(deal["unitsDisplay"]) == 8 and places(deal["averageEntryDisplay"]) == 2
    assert abs(Decimal(deal["averageEntryDisplay"]) - Decimal(deal["averageEntry"])) <= (
        Decimal("0.005"))
    resting = [o for o in deal["orders"] if o["price"] is not None]
    assert resting and all(places(o["priceDisplay"]) == 2 for o in resting)
    assert all(places(o["amountDisplay"]) == 8 for o in deal["orders"])
