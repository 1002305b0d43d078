"""Hypothesis strategies for what the outside world may send: odd numbers, odd times, any JSON,
TradingView-shaped webhook bodies built from them. Shared by the fast edge tests and
scripts/fuzz_api.py (which runs them longer, with schemathesis beside them)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Numbers people (and programs) write: overflow, NaN, signs, 40 digits, digits of other
# scripts, grouping, far exponents, and the plain ones.
ODD_NUMBERS = ["1e999999", "-1e999999", "1e-999999", "NaN", "nan", "-NaN", "sNaN", "Infinity",
               "-Infinity", "inf", "-0", "0", "0.0", "-0.0", "1" * 40, "0." + "1" * 40,
               "١٢٣", "１２", "1_000", "²", "9" * 5000, " 87000.5 ", "87000.5", "1e30", "1e31",
               "1e-30", "1e-31", "+1", "1.", ".5", "1e", "e5", "0x10", "1,5", "", " "]
ODD_TIMES = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z",
             "0001-01-01T00:00:00+23:59", "99999999999999999999", "1" * 5000, "٣",
             "253402300799", "253402300800", "-1", "0", "2026-03-01T12:00:00.123456789Z",
             "2026-03-01", "2026-02-30T00:00:00Z", "T", ""]


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value, nested (lists and objects of scalars)."""
    scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
               | st.floats(allow_nan=False, allow_infinity=False))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                        max_leaves=max_leaves)


def odd_numbers() -> st.SearchStrategy[Any]:
    """Numbers as text, as JSON numbers (int, float) and as other types."""
    return st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(),
                     st.floats(allow_nan=False, allow_infinity=False),
                     st.decimals(allow_nan=False, allow_infinity=False).map(str),
                     st.text(max_size=30), json_values(4))


def odd_times(now_texts: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(ODD_TIMES + now_texts), st.integers(),
                     st.integers().map(str), st.text(max_size=30))


def webhook_bodies(secret: str, bot_id: str, now_texts: list[str]) -> st.SearchStrategy[bytes]:
    """Bodies for ``POST /webhooks/{id}``: the TradingView alert's fields (the right secret
    and action often enough to reach the later checks), any of them odd; or any bytes."""
    fields = st.fixed_dictionaries({}, optional={
        "secret": st.just(secret) | json_values(4),
        "action": st.sampled_from(["buy", "sell", "start_deal", "close_deal", " BUY ",
                                   "short"]) | json_values(4),
        "pair": st.sampled_from(["BTCUSDT", "BINANCE:BTCUSDT", "BTC/USDT", "ETHUSDT"])
        | json_values(4),
        "price": odd_numbers(), "amount": odd_numbers(),
        "timestamp": odd_times(now_texts),
        "id": st.text(max_size=200) | json_values(4),
        "bot_id": st.sampled_from([bot_id, "00000000-0000-0000-0000-000000000000", "x" * 70])
        | json_values(4),
    })
    as_json = fields.flatmap(lambda d: st.sampled_from([
        json.dumps(d).encode(), json.dumps(d, ensure_ascii=False).encode("utf-8", "replace")]))
    return st.one_of(as_json, as_json, st.binary(max_size=200),
                     st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
