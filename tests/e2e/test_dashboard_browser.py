"""The dashboard in a real headless Chromium (Debian's ``chromium`` through Playwright)
against ``tradetape serve --demo``, the browser cut off from every host but 127.0.0.1: a
trader logs in as the demo user, watches closed deals arrive without reloading, creates and
starts a bot through the form after looking at its ladder, runs a backtest, drags the as-of
slider back to an earlier portfolio, and stops the bot; fetches a candle series from an
exchange (the local exchange simulator as the sandbox) and backtests it; an administrator
rebuilds the projections from the admin page. Each page's screenshot is saved in
var/screenshots/ (gitignored), the artefacts of the run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import TRADETAPE, graphql_faults, only_loopback, server_env
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
DEMO = ("demo@tradetape.local", "Tradetape-demo-1")
ADMIN = ("admin@tradetape.local", "Admin-pass-4242")
WAIT = 60_000  # ms: the demo closes deals within its first market minutes (300x)


# Every control a keyboard or a screen reader reaches has a name: a label, aria-label(ledby)
# or, for a button or link, its text.
UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter(el => el.type !== 'hidden' && !(el.getAttribute('aria-label') || '').trim()
    && !el.getAttribute('aria-labelledby') && !(el.labels && el.labels.length)
    && !(['BUTTON', 'A'].includes(el.tagName) && el.innerText.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


def shot(page, name: str) -> None:
    """Save the page's screenshot, after checking each of its controls has a name."""
    assert page.evaluate(UNNAMED) == [], name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page, base_url: str, who: tuple[str, str] = DEMO) -> None:
    page.goto(f"{base_url}/", wait_until="load")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for(timeout=WAIT)


def closed_deal_rows(page) -> list[str]:
    return page.locator('[data-testid="closed-deals"] tbody tr').all_inner_texts()


def see_closed_deals_arrive(page) -> None:
    """A deal closed after the page loaded shows up in the table with no reload."""
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    # the first answer is on the page (a table, or none closed yet) before we look
    page.wait_for_selector('[data-testid="closed-deals"], p:has-text("No closed deal yet.")',
                           timeout=WAIT)
    before = set(closed_deal_rows(page))
    page.wait_for_function(
        """before => [...document.querySelectorAll('[data-testid="closed-deals"] tbody tr')]
                      .some(row => !before.includes(row.innerText))""",
        arg=list(before), timeout=WAIT)
    assert page.evaluate("window.__sameDocument") is True
    assert "take_profit" in " ".join(closed_deal_rows(page))  # the reason, as closed
    page.locator('[data-testid="card-price"]').filter(has_text=re.compile(r"\d")).wait_for()
    page.get_by_text(re.compile(r"engine loop:\s*green")).wait_for()
    shot(page, "overview")


def create_and_start_a_bot(page) -> None:
    page.get_by_role("link", name="Bots", exact=True).click()
    page.get_by_role("heading", name="Bots", exact=True).wait_for()
    shot(page, "bots")
    page.get_by_role("link", name="New bot").click()
    page.get_by_label("Name").fill("Browser bot")
    page.get_by_label("Max safety orders").fill("2")
    page.get_by_label("Price deviation %").fill("2")
    page.get_by_label("Safety step scale").fill("1")
    page.get_by_label("Preview at price").fill("50000")
    # the ladder as typed: the base order at 50,000, then 2 % and 4 % below it
    ladder = page.locator('[data-testid="ladder-table"] tbody tr')
    page.wait_for_function("""() => document.querySelectorAll(
        '[data-testid="ladder-table"] tbody tr').length === 3""", timeout=WAIT)
    prices = [row.locator("td").nth(2).inner_text() for row in ladder.all()]
    assert prices == ["50,000.00", "49,000.00", "48,000.00"]
    assert page.locator('[data-testid="ladder-chart"] canvas').first.is_visible()
    shot(page, "bot-form")
    page.get_by_role("button", name="Create bot").click()
    page.wait_for_url(re.compile(r"#/bots/(?!new$)[^/]+$"), timeout=WAIT)  # created: its page
    page.get_by_role("heading", name=re.compile("Browser bot")).wait_for(timeout=WAIT)
    page.locator('[data-testid="bot-status"]').filter(has_text="RUNNING").wait_for()
    assert "PAPER" in page.locator('[data-testid="mode-banner"]').inner_text()
    shot(page, "bot-detail")
    page.get_by_role("link", name="Edit").click()  # a new take profit, saved as an event
    page.get_by_label("Take profit %", exact=True).wait_for()
    page.wait_for_function("""() => document.getElementById('f-name').value === 'Browser bot'""")
    page.get_by_label("Take profit %", exact=True).fill("1.5")
    shot(page, "bot-edit")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"#/bots/[^/]+$"), timeout=WAIT)  # saved: back on the bot
    page.locator('[data-testid="bot-status"]').wait_for()


def demo_bot_detail(page) -> None:
    """A demo bot's chart carries its fills; its deals table lists them."""
    page.get_by_role("link", name="Bots", exact=True).click()
    page.get_by_role("link", name="BTC quick scalper").click()
    page.locator('[data-testid="deals-table"] tbody tr').first.wait_for(timeout=WAIT)
    assert page.locator('[data-testid="price-chart"] canvas').first.is_visible()
    shot(page, "bot-detail-demo")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export deals as CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("deal,status,opened,closed,reason")
    assert any(",CLOSED," in line and ",take_profit," in line for line in lines[1:])


def run_backtests(page) -> None:
    """Two days of the shipped month, then again with another take profit: each run's chart
    and summary show, and the two compare side by side."""
    page.get_by_role("link", name="Backtest").click()
    page.get_by_role("heading", name="Backtest", exact=True).wait_for()
    page.get_by_label("Candle series").select_option("@pair")  # the pair's (BTC/USDT) series
    page.get_by_label("From (UTC, optional)").fill("2025-11-03T00:00")
    page.get_by_label("To (UTC, optional)").fill("2025-11-05T00:00")
    page.get_by_label("Price deviation %").fill("0.5")
    for take_profit in ("0.5", "1"):
        page.get_by_label("Take profit %", exact=True).fill(take_profit)
        page.get_by_role("button", name="Run backtest").click()
        result = page.locator('[data-testid="backtest-result"]')
        result.wait_for(timeout=WAIT)
        page.locator('[data-testid="backtest-progress"]').wait_for()
        summary = page.locator('[data-testid="backtest-summary"]').inner_text()
        assert "2880" in summary  # two days of one-minute candles
        page.locator('[data-testid="backtest-chart"] canvas').first.wait_for()
        page.wait_for_timeout(500)  # the candles answer
    shot(page, "backtest")
    boxes = page.locator('[data-testid="backtest-runs"] input[type="checkbox"]')
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.locator('[data-testid="comparison"] canvas').first.wait_for(timeout=WAIT)
    shot(page, "backtest-compare")


def fetch_a_series(page) -> None:
    """Six hours of BTC/USDT from the sandbox exchange (the simulator), fetched on the server
    with its progress shown, then picked for a backtest that walks exactly those candles."""
    form = page.locator('[data-testid="fetch-form"]')
    form.get_by_label("Exchange (ccxt id)").fill("binance")
    form.get_by_label("Pair to fetch").fill("BTC/USDT")
    form.get_by_label("First candle (UTC)").fill("2025-11-01T00:00")
    form.get_by_label("Last candle before (UTC, optional)").fill("2025-11-01T06:00")
    form.get_by_label("Sandbox (testnet)").check()
    form.get_by_role("button", name="Fetch candles").click()
    page.locator('[data-testid="fetch-status"]').filter(has_text="completed").wait_for(
        timeout=WAIT)
    fetched = "binance-sandbox_BTC_USDT-1m-20251101T0000.csv"
    form.get_by_text(f"{fetched}: 360 candles added").wait_for()
    series = page.get_by_label("Candle series")
    page.wait_for_function("name => [...document.querySelectorAll('#f-file option')]"
                           ".some(o => o.value === name)", arg=fetched, timeout=WAIT)
    assert series.input_value() == fetched  # picked for the next run
    page.get_by_label("From (UTC, optional)").fill("")
    page.get_by_label("To (UTC, optional)").fill("")
    page.get_by_role("button", name="Run backtest").click()
    page.locator('[data-testid="backtest-summary"]').filter(has_text="360").wait_for(
        timeout=WAIT)
    page.locator('[data-testid="backtest-chart"] canvas').first.wait_for()
    page.wait_for_timeout(1000)  # the candles answer
    shot(page, "backtest-fetch")


def figure(page, name: str) -> str:
    return page.locator(f'[data-testid="fig-{name}"]').inner_text()


def drag_the_slider_back(page) -> None:
    page.get_by_role("link", name="As of").click()
    page.get_by_role("heading", name="As of a past moment").wait_for()
    page.locator('[data-testid="fig-Deals closed"]').wait_for(timeout=WAIT)
    page.get_by_label("Bot").select_option(label="BTC quick scalper")
    page.locator('[data-testid="bot-as-of"]').filter(has_text="RUNNING").wait_for(timeout=WAIT)
    now_closed = int(figure(page, "Deals closed"))
    assert now_closed > 0
    bot_now = page.locator('[data-testid="bot-as-of"]').inner_text()
    slider = page.get_by_label(re.compile("^As of"))
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] - 4, y)  # the thumb: now
    page.mouse.down()
    page.mouse.move(box["x"] + 2, y, steps=12)  # to the registration of the demo user
    page.mouse.up()
    # a second after the demo user registered: the paper deposit there, fewer deals closed
    page.wait_for_function("""n => Number(document.querySelector(
        '[data-testid="fig-Deals closed"]')?.innerText) < n""", arg=now_closed, timeout=WAIT)
    balances = page.locator('[data-testid="portfolio-figures"] + table').inner_text()
    assert "USDT" in balances, balances
    assert page.locator('[data-testid="bot-as-of"]').inner_text() != bot_now  # an earlier bot
    page.get_by_role("heading", name="Leaderboard").wait_for()  # as it stood then, too
    shot(page, "as-of")


def other_pages(page) -> None:
    for link, heading in [("Portfolio", "Portfolio"), ("Leaderboard", "Leaderboard"),
                          ("Audit log", "Audit log")]:
        page.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        page.wait_for_timeout(1500)  # the tables and charts answer
        shot(page, link.lower().replace(" ", "-"))
    page.locator('[data-testid="audit-table"] tbody tr').first.wait_for(timeout=WAIT)


def stop_the_bot(page) -> None:
    page.get_by_role("link", name="Bots", exact=True).click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Stop Browser bot for good?"
    page.get_by_role("button", name="Stop Browser bot").click()
    row = page.locator('tr[data-bot="Browser bot"]')
    row.locator('[data-testid="bot-status"]').filter(has_text="STOPPED").wait_for(timeout=WAIT)
    shot(page, "bots-stopped")
    row.get_by_role("link", name="Browser bot").click()  # then delete it: archived, unlisted
    page.on("dialog", accept)  # "Delete…?", then "It has an open deal: sell it…?" if it has
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("heading", name="Bots", exact=True).wait_for()
    page.locator('tr[data-bot="BTC quick scalper"]').wait_for()
    assert page.locator('tr[data-bot="Browser bot"]').count() == 0
    page.remove_listener("dialog", accept)


def accept(dialog) -> None:
    dialog.accept()


def fits_a_phone(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("heading", name="Overview").wait_for()
    page.wait_for_timeout(1000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "overview-phone")


def administer(page, server) -> None:
    """An administrator (made with `tradetape users create`) blocks and unblocks the demo user
    from the admin page, and sees the projections' lag."""
    subprocess.run([str(TRADETAPE), "users", "create", "--email", ADMIN[0], "--password",
                    ADMIN[1], "--role", "admin", "--verified", "--database",
                    server.database_url], env=server_env(), check=True, capture_output=True,
                   timeout=60)
    page.set_viewport_size({"width": 1300, "height": 900})
    page.get_by_role("button", name="Log out").click()
    log_in(page, server.base_url, ADMIN)
    page.get_by_role("link", name="Admin").click()
    demo = page.locator(f'tr[data-user="{DEMO[0]}"]')
    demo.wait_for(timeout=WAIT)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Block {DEMO[0]}").click()
    demo.locator('[data-testid="user-state"]').filter(has_text="blocked").wait_for()
    page.get_by_role("button", name=f"Unblock {DEMO[0]}").click()
    demo.locator('[data-testid="user-state"]').filter(has_text="active").wait_for()
    assert "frontend" in page.locator('[data-testid="projections-table"]').inner_text()
    shot(page, "admin")
    page.once("dialog", lambda dialog: dialog.accept())  # "Rebuild every projection…?"
    page.get_by_role("button", name="Rebuild all projections").click()
    page.locator('[data-testid="rebuild-status"]').filter(has_text="completed").wait_for(
        timeout=WAIT)
    page.get_by_text(re.compile(r"Rebuilt audit, .*frontend.* up to position \d+")).wait_for()
    shot(page, "admin-rebuild")


def test_a_trader_uses_the_dashboard_in_a_browser(launch, chromium):
    first_ms = int(BTC_USDT_CANDLES.read_text().splitlines()[1].split(",")[0])
    with running_simulator(speed=0, start_ms=first_ms + 86_400_000) as sim:  # a day later
        # the demo's own 300x; fetched series come from the simulator as binance's sandbox
        server = launch(speed=None, demo=True, env={"TRADETAPE_SANDBOX_HOST": sim.url})
        _use_the_dashboard(server, chromium)


def _use_the_dashboard(server, chromium):
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    elsewhere = only_loopback(page)
    wrong = graphql_faults(page)
    faults: list[str] = []
    page.on("pageerror", lambda error: faults.append(str(error)))
    try:
        log_in(page, server.base_url)
        see_closed_deals_arrive(page)
        create_and_start_a_bot(page)
        demo_bot_detail(page)
        run_backtests(page)
        fetch_a_series(page)
        drag_the_slider_back(page)
        other_pages(page)
        stop_the_bot(page)
        fits_a_phone(page)
        administer(page, server)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # what the page showed when it failed
        page.screenshot(path=SCREENSHOTS / "failure.png", full_page=True)
        print("errors on the page:", faults)  # what broke it, beside the screenshot
        raise
    assert wrong == []  # every document the pages sent was valid and within the limits
    assert elsewhere == []  # the dashboard asked nothing of any other host
    assert faults == []
