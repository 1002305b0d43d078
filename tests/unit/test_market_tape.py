"""The market tape's candles as charts get them, and the stored series a user may name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.candle_library import CandleFileError, CandleLibrary
from application.market_tape import (
    ChartError,
    MarketTape,
    TapeCandle,
    aggregate,
    timeframe_seconds,
)
from domain.errors import DomainError

T0 = datetime(2026, 3, 1, tzinfo=UTC)
prices = st.decimals(min_value=1, max_value=100_000, places=2, allow_nan=False)


@st.composite
def candles(draw) -> list[TapeCandle]:
    """Candles of 10 s, some missing, with any prices."""
    found = []
    for n in range(draw(st.integers(1, 60))):
        if draw(st.booleans()) and n:
            continue
        o, c, a, b = (draw(prices) for _ in range(4))
        opened = T0 + timedelta(seconds=10 * n)
        found.append(TapeCandle(opened, opened + timedelta(seconds=10), o,
                                max(o, c, a, b), min(o, c, a, b), c))
    return found


@settings(max_examples=60, deadline=None)
@given(candles(), st.sampled_from([20, 30, 60]))
def test_merging_twice_equals_merging_once(found, seconds):
    end = T0 + timedelta(hours=1)
    fine = aggregate(found, 10, T0, end)
    as_candles = [TapeCandle(r["time"], r["time"] + timedelta(seconds=10), r["open"],
                             r["high"], r["low"], r["close"]) for r in fine]
    assert aggregate(as_candles, seconds, T0, end) == aggregate(found, seconds, T0, end)
    coarse = aggregate(found, 120, T0, end)
    assert [r["high"] for r in coarse] == [
        max(c.high for c in found if int(c.opened_at.timestamp()) // 120 == key)
        for key in sorted({int(c.opened_at.timestamp()) // 120 for c in found})]
    assert coarse[0]["open"] == found[0].open and coarse[-1]["close"] == found[-1].close


def test_a_tape_keeps_the_latest_candles_of_each_pair_and_its_last_price():
    tape = MarketTape(keep=3)
    for n in range(5):
        price = Decimal(100 + n)
        at = T0 + timedelta(minutes=n)
        tape.record("BTC/USDT", TapeCandle(at, at + timedelta(minutes=1), price, price,
                                           price, price))
    assert tape.last("BTC/USDT").close == Decimal(104) and tape.last("ETH/USDT") is None
    rows = tape.candles("BTC/USDT", "1m", T0, T0 + timedelta(hours=1))
    assert [r["close"] for r in rows] == [Decimal(102), Decimal(103), Decimal(104)]
    with pytest.raises(ChartError) as backwards:
        tape.candles("BTC/USDT", "1m", T0, T0)
    assert backwards.value.code == "INVALID_RANGE"


@pytest.mark.parametrize("text, seconds", [("1m", 60), ("15m", 900), ("4h", 14_400),
                                           ("1d", 86_400), ("30s", 30), (" 7d ", 604_800)])
def test_timeframes_are_a_number_and_a_unit(text, seconds):
    assert timeframe_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1", "1w", "-1m", "0m", "8d", "1.5h", "1e3s"])
def test_other_timeframes_are_refused_by_name(text):
    with pytest.raises(DomainError) as refused:
        timeframe_seconds(text)
    assert refused.value.code == "INVALID_TIMEFRAME"


def test_only_bare_names_of_files_inside_the_directories_are_read(tmp_path: Path):
    inside, outside = tmp_path / "candles", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "ok.csv").write_text("x")
    (outside / "secret.csv").write_text("x")
    (inside / "link.csv").symlink_to(outside / "secret.csv")
    library = CandleLibrary([inside], load=lambda path: path.name)
    assert library.load("ok.csv") == "ok.csv"
    assert library.names() == ["ok.csv"]  # the link out is not offered
    for name, code in [("../elsewhere/secret.csv", "CANDLE_FILE_NOT_ALLOWED"),
                       (str(outside / "secret.csv"), "CANDLE_FILE_NOT_ALLOWED"),
                       ("ok", "CANDLE_FILE_NOT_ALLOWED"), ("..csv", "CANDLE_FILE_NOT_ALLOWED"),
                       ("link.csv", "CANDLE_FILE_NOT_FOUND"),
                       ("missing.csv", "CANDLE_FILE_NOT_FOUND")]:
        with pytest.raises(CandleFileError) as refused:
            library.path(name)
        assert refused.value.code == code, name
