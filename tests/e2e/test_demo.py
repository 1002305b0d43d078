"""``tradetape serve --demo`` at its default speed (no ``--speed``, no ``TRADETAPE_SPEED``):
within 60 s of the start a GraphQL query as the demo user shows closed deals with P/L; a
second start on the same database prints the same login line and reuses the same user and
bots."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.e2e.conftest import login

pytestmark = pytest.mark.timeout(150)
WITHIN = 60.0  # seconds from the first start, as the README promises
DEMO_VIEW = """{
  portfolio { realizedPnl unrealizedPnl fees dealsClosed dealsOpen winRate }
  deals(status: CLOSED, first: 20) {
    edges { node { id status closeReason realizedPnl fees bot { name } } }
  }
  bots(first: 10) { edges { node { id name status dealsOpened dealsClosed } } }
}"""


def market_between(start: datetime, end: datetime, speed: float) -> str:
    """What the paper market replayed between two wall-clock times, to tell a market that
    gave no deal a chance to close from a server that did not trade."""
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.replay_feed import ReplayFeed
    from adapters.marketdata.shipped import shipped_series
    from application.server_settings import DEFAULT_FEED, DEFAULT_FEED_PAIR

    candles = load_candles(shipped_series(DEFAULT_FEED))
    feed = ReplayFeed(candles, DEFAULT_FEED_PAIR, speed=speed,
                      epoch=datetime(2026, 1, 1, tzinfo=UTC))  # as application.bootstrap
    first, last = feed.closed_count(start), feed.closed_count(end)
    rows = [candles.exact(k % len(candles)) for k in range(first, last)]
    if not rows:
        return "no candle closed"
    entry = rows[0][3]
    high = max(r[1] for r in rows) / entry * 100 - 100
    low = min(r[2] for r in rows) / entry * 100 - 100
    return (f"{len(rows)} candles from index {first % len(candles)}: from the first close "
            f"{entry} the price went up {high:+.3f} % and down {low:+.3f} % at most")


def test_demo_is_idempotent_and_shows_closed_deals_within_a_minute(launch):
    wall_start = datetime.now(UTC)
    server = launch(speed=None, demo=True)
    line = server.login_line()
    speed = float(re.search(r"paper market at ([\d.]+)x", server.stdout).group(1))
    match = re.fullmatch(r"demo login: (\S+@\S+) password: (\S+)", line)
    assert match, line
    email, password = match.groups()
    token = login(server, email, password)

    deadline = server.started_at + WITHIN
    view = server.gql(DEMO_VIEW, token=token)
    while view["portfolio"]["dealsClosed"] < 1 and time.monotonic() < deadline:
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
        view = server.gql(DEMO_VIEW, token=token)
    took = time.monotonic() - server.started_at
    assert view["portfolio"]["dealsClosed"] >= 1, (
        f"no demo deal closed within {WITHIN:g} s of the start ({took:.1f} s): "
        f"{market_between(wall_start, datetime.now(UTC), speed)} at {speed:g}x; "
        f"bots: {view['bots']}")

    portfolio = view["portfolio"]
    assert Decimal(portfolio["realizedPnl"]).is_finite() and Decimal(portfolio["fees"]) > 0
    closed = [edge["node"] for edge in view["deals"]["edges"]]
    assert 1 <= len(closed) <= 20  # read a moment after the portfolio: may hold one more
    for deal in closed:
        assert deal["status"] == "CLOSED" and deal["closeReason"], deal
        assert Decimal(deal["realizedPnl"]).is_finite()
        assert Decimal(deal["fees"]) > 0
    bots = {edge["node"]["name"]: edge["node"] for edge in view["bots"]["edges"]}
    assert sorted(bots) == ["BTC deep ladder", "BTC quick scalper"]
    assert {bot["status"] for bot in bots.values()} == {"RUNNING"}
    assert {deal["bot"]["name"] for deal in closed} <= set(bots)

    # A second start on the same database: the same line, user and bots, nothing doubled.
    server.stop()
    server.start()
    assert server.login_line() == line
    token = login(server, email, password)
    again = server.gql(DEMO_VIEW, token=token)
    assert {edge["node"]["name"]: edge["node"]["id"] for edge in again["bots"]["edges"]} == {
        name: bot["id"] for name, bot in bots.items()}
    assert {edge["node"]["status"] for edge in again["bots"]["edges"]} == {"RUNNING"}
    assert again["portfolio"]["dealsClosed"] >= portfolio["dealsClosed"]
