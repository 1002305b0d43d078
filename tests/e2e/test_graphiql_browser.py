"""GraphiQL in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against
a real ``tradetape serve``, with the browser cut off from every host but 127.0.0.1: the page
renders, a query typed into its editor runs, and its answer shows. A screenshot of the page
with the answer is saved in the test's tmp dir (``graphiql.png``)."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.e2e.conftest import only_loopback

# A public query the server computes: the ladder of 100 USDT with two safety orders, 0.3 %
# apart, the second step 1.2 times the first: 100, 99.7 and 100 - 0.3 - 0.36 = 99.34.
QUERY = """{
  dcaPlan(price: "100", config: {pair: "btc/usdt", baseOrderQuote: "100",
      safetyOrderQuote: "50", maxSafetyOrders: 2, priceDeviationPct: "0.3",
      safetyVolumeScale: "1.5", safetyStepScale: "1.2", takeProfitPct: "0.2"}) {
    ... on DcaPlan { pair levels { n price } }
    ... on InputErrors { code message }
  }
}"""


def test_graphiql_renders_and_runs_a_query_with_no_network(launch, chromium, tmp_path):
    server = launch(speed=None)
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    elsewhere = only_loopback(page)
    page.goto(f"{server.base_url}/graphql", wait_until="load")
    page.wait_for_selector(".graphiql-execute-button", timeout=30_000)  # not "Loading..."
    editor = page.locator(".graphiql-query-editor .CodeMirror").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # CodeMirror closes brackets as they are typed: put the text in as one edit, as a paste.
    page.keyboard.insert_text(QUERY)
    page.locator(".graphiql-execute-button").click()
    answer = page.locator(".graphiql-response .CodeMirror")
    answer.filter(has_text='"99.34').wait_for(timeout=30_000)  # the answer is on screen
    # ... and the whole of it, as the response editor holds it (its DOM has only what shows)
    text = answer.evaluate("element => element.CodeMirror.getValue()")
    page.screenshot(path=tmp_path / "graphiql.png", full_page=True)

    plan = json.loads(text)["data"]["dcaPlan"]
    assert plan["pair"] == "BTC/USDT"
    assert [(level["n"], Decimal(level["price"])) for level in plan["levels"]] == [
        (0, Decimal("100")), (1, Decimal("99.7")), (2, Decimal("99.34"))]
    assert elsewhere == []  # every script and stylesheet came from the server itself
    assert (tmp_path / "graphiql.png").stat().st_size > 10_000
