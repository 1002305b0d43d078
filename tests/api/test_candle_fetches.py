"""Fetching a candle series from GraphQL, as the dashboard's backtest page does: through the
real ccxt ``binance`` class against the local exchange simulator (``TRADETAPE_SANDBOX_HOST``),
in the background with progress on a subscription; the series is then one of
``candleFiles`` and backtests by name. The expected bytes are the shipped file the simulator
serves, never the server's own output."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import CONFIG
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

pytestmark = pytest.mark.timeout(180)
LINES = BTC_USDT_CANDLES.read_text().splitlines(keepends=True)
T0 = int(LINES[1].split(",")[0])
MINUTE = 60_000
NAME = "binance-sandbox_BTC_USDT-1m-20251101T0000.csv"
FETCH = """mutation($input: FetchCandlesInput!) { fetchCandles(input: $input) { __typename
  ... on CandleFetch { id status file pair timeframe }
  ... on CandleFetchErrors { code errors { code field message } } } }"""
STATE = """query($id: ID!) { candleFetch(id: $id) { id status file candlesDone candlesTotal
  fraction candlesWritten gaps errorCode errorMessage } }"""
PROGRESS = """subscription($id: ID!) { candleFetchProgress(fetchId: $id) {
  status candlesDone candlesTotal fraction candlesWritten } }"""
ASKED = {"exchange": "binance", "pair": "BTC/USDT", "timeframe": "1m", "sandbox": True,
         "from": "2025-11-01T00:00:00Z", "to": "2025-11-01T06:00:00Z"}


@pytest.fixture
def sim(monkeypatch):
    # A day has passed on the simulated exchange; its clock stands still.
    with running_simulator(speed=0, start_ms=T0 + 1440 * MINUTE) as handle:
        monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", handle.url)
        yield handle


def ended(server, token: str, fetch_id: str) -> dict:
    for _ in range(1200):
        state = server.gql(STATE, {"id": fetch_id}, token)["candleFetch"]
        if state["status"] in ("completed", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError("the fetch never ended")


def test_a_fetched_series_is_stored_listed_and_backtests(server, sim):
    alice = server.user("alice")
    started = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]
    assert started["__typename"] == "CandleFetch", started
    assert (started["file"], started["pair"]) == (NAME, "BTC/USDT")

    seen = [message["data"]["candleFetchProgress"] for message in server.subscription(
        PROGRESS, {"id": started["id"]}, alice.token)]
    assert seen[-1] == {"status": "completed", "candlesDone": 360, "candlesTotal": 360,
                        "fraction": "1", "candlesWritten": 360}

    files = server.gql("{ candleFiles }", token=alice.token)["candleFiles"]
    assert NAME in files
    stored = server.runtime.candle_library.path(NAME)
    assert stored.read_bytes() == "".join(LINES[:1 + 360]).encode()  # what the exchange has
    assert not stored.with_name(NAME + ".part").exists()
    charted = server.gql("""query($file: String!) { candles(pair: "BTC/USDT", file: $file,
      from: "2025-11-01T00:00:00Z", to: "2025-11-01T06:00:00Z") { time close } }""",
                         {"file": NAME}, alice.token)["candles"]
    assert len(charted) == 360 and charted[-1]["close"] == LINES[360].split(",")[4]

    run = server.gql("""mutation($input: RunBacktestInput!) { runBacktest(input: $input) {
      __typename ... on BacktestRun { candlesFile } } }""",
                     {"input": {"config": CONFIG, "candles": {"file": NAME}}},
                     alice.token)["runBacktest"]
    assert run == {"__typename": "BacktestRun", "candlesFile": NAME}


def test_asked_again_it_goes_on_after_the_last_candle(server, sim):
    alice = server.user("alice")
    first = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]
    assert ended(server, alice.token, first["id"])["candlesWritten"] == 360
    later = server.gql(FETCH, {"input": {**ASKED, "to": "2025-11-01T08:00:00Z"}},
                       alice.token)["fetchCandles"]
    state = ended(server, alice.token, later["id"])

    assert later["file"] == NAME and state["status"] == "completed"
    assert state["candlesWritten"] == 120  # only the two hours it did not have
    assert server.runtime.candle_library.path(NAME).read_bytes() == (
        "".join(LINES[:1 + 480]).encode())


def test_a_fetch_is_private_to_who_asked(server, sim):
    alice, bob = server.user("alice"), server.user("bob")
    started = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]
    assert server.gql(STATE, {"id": started["id"]}, bob.token)["candleFetch"] is None
    [answer] = server.subscription(PROGRESS, {"id": started["id"]}, bob.token)
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == f"no candle fetch {started['id']}"
    assert ended(server, alice.token, started["id"])["status"] == "completed"


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"exchange": "nosuchexchange"}, "EXCHANGE_NOT_SUPPORTED", "exchange"),
    ({"pair": "DOGE/EUR"}, "PAIR_NOT_TRADED", "pair"),
    ({"timeframe": "7m"}, "INVALID_TIMEFRAME", "timeframe"),
    ({"to": "2025-10-31T00:00:00Z"}, "INVALID_TIME", "to"),
])
def test_a_request_the_exchange_cannot_answer_is_refused_by_name(server, sim, change, code,
                                                                 field):
    alice = server.user("alice")
    before = server.gql("{ candleFiles }", token=alice.token)["candleFiles"]

    refused = server.gql(FETCH, {"input": {**ASKED, **change}}, alice.token)["fetchCandles"]

    assert refused["__typename"] == "CandleFetchErrors", refused
    assert (refused["code"], refused["errors"][0]["field"]) == (code, field)
    assert server.gql("{ candleFiles }", token=alice.token)["candleFiles"] == before


def test_an_exchange_gone_away_is_named_and_nothing_is_stored(server, monkeypatch):
    monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", "http://127.0.0.1:9")  # nothing listens
    alice = server.user("alice")
    before = server.gql("{ candleFiles }", token=alice.token)["candleFiles"]

    refused = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]

    assert (refused["__typename"], refused["code"]) == ("CandleFetchErrors",
                                                       "EXCHANGE_UNAVAILABLE")
    assert server.gql("{ candleFiles }", token=alice.token)["candleFiles"] == before


def test_a_fetch_the_exchange_fails_leaves_the_stored_series_as_it_was(server, sim):
    alice = server.user("alice")
    first = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]
    assert ended(server, alice.token, first["id"])["status"] == "completed"
    stored = server.runtime.candle_library.path(NAME)
    before = stored.read_bytes()
    # Every candle request from now on loses its answer (retries included).
    sim.lose_response(times=20, method="GET", path="/api/v3/klines")

    later = server.gql(FETCH, {"input": {**ASKED, "to": "2025-11-01T20:00:00Z"}},
                       alice.token)["fetchCandles"]
    state = ended(server, alice.token, later["id"])

    assert (state["status"], state["errorCode"]) == ("failed", "EXCHANGE_UNAVAILABLE")
    assert stored.read_bytes() == before
    assert not stored.with_name(NAME + ".part").exists()


def test_more_than_a_year_of_minutes_is_refused_before_anything_is_fetched(server, sim):
    alice = server.user("alice")
    sim.set_time(T0 + 400 * 1440 * MINUTE)  # 400 days on; the request names no end

    refused = server.gql(FETCH, {"input": {**ASKED, "to": None}}, alice.token)["fetchCandles"]

    assert (refused["__typename"], refused["code"]) == ("CandleFetchErrors", "TOO_MANY_CANDLES")
    assert NAME not in server.gql("{ candleFiles }", token=alice.token)["candleFiles"]
