"""Seeded random-walk candles, for tests and demos that need more data than we ship.

Closes follow a geometric random walk (normal log-returns of standard deviation
``volatility`` per candle); each candle opens at the previous close, as 24/7 crypto markets
do, and its wicks reach past the body by an exponentially distributed fraction of the
volatility. Prices are whole cents (2 decimals) and at least 0.01, so every candle obeys the
rules of :mod:`adapters.marketdata.csv_candles` by construction, not by luck.

The same ``seed`` gives the same candles on the same platform (numpy's ``default_rng``);
``exp`` may differ in its last bit between platforms, so do not pin file hashes across them.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from adapters.marketdata.csv_candles import HEADER
from domain.money import to_decimal

DEFAULT_START_MS = 1_640_995_200_000  # 2022-01-01 00:00 UTC
_PRICE_DECIMALS = 2
_VOLUME_DECIMALS = 5
# Keeps a wild volatility from overflowing int64 cents: no price above 10 trillion.
_MAX_CENTS = 10**15
_TYPICAL_VOLUME = 10.0  # base-asset units per candle, about BTC/USDT on a quiet minute


def write_walk_csv(
    path: str | os.PathLike[str],
    n: int,
    seed: int,
    start_price: object = "30000",
    interval_ms: int = 60_000,
    start_ms: int = DEFAULT_START_MS,
    volatility: object = "0.0006",
) -> Path:
    """Write ``n`` walk candles as a candle CSV (header included) and return its path."""
    columns = _walk_text_columns(n, seed, start_price, interval_ms, start_ms, volatility)
    path = Path(path)
    with path.open("wb") as file:
        # pyarrow quotes header names whatever the quoting style, so the header is ours.
        file.write(",".join(HEADER).encode() + b"\n")
        pacsv.write_csv(
            pa.table(columns, names=list(HEADER)),
            file,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
        )
    return path


def generate_walk(
    n: int,
    seed: int,
    start_price: object = "30000",
    interval_ms: int = 60_000,
    start_ms: int = DEFAULT_START_MS,
    volatility: object = "0.0006",
) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """The candles :func:`write_walk_csv` would write, as rows for ``candles_from_rows``."""
    timestamps, *texts = _walk_text_columns(n, seed, start_price, interval_ms, start_ms, volatility)
    numbers = [[Decimal(text) for text in column.to_pylist()] for column in texts]
    return list(zip(timestamps.to_pylist(), *numbers, strict=True))


def _walk_text_columns(
    n: int, seed: int, start_price: object, interval_ms: int, start_ms: int, volatility: object
) -> list[pa.Array]:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if interval_ms < 1:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    start_cents = int((to_decimal(start_price, "start_price") * 100).to_integral_value())
    if not 1 <= start_cents <= _MAX_CENTS:
        raise ValueError(f"start_price must be between 0.01 and 1e13, got {start_price}")
    sigma = to_decimal(volatility, "volatility")
    if sigma < 0:
        raise ValueError(f"volatility must not be negative, got {volatility}")
    # Floats are fine here: they shape the randomness; every price written is whole cents.
    rng = np.random.default_rng(seed)
    sigma_f = float(sigma)
    log_returns = rng.normal(0.0, sigma_f, n)
    log_close = np.log(start_cents) + np.cumsum(log_returns)
    close = _whole_units(np.exp(np.minimum(log_close, np.log(_MAX_CENTS))))
    open_ = np.concatenate(([start_cents], close[:-1]))
    upper_wick = _whole_units(np.maximum(open_, close) * sigma_f * rng.exponential(0.5, n), low=0)
    lower_wick = _whole_units(np.minimum(open_, close) * sigma_f * rng.exponential(0.5, n), low=0)
    high = np.minimum(np.maximum(open_, close) + upper_wick, _MAX_CENTS)
    low = np.maximum(np.minimum(open_, close) - lower_wick, 1)
    # Busy candles move more: volume grows with the size of the move.
    move = np.abs(log_returns) / sigma_f if sigma_f > 0 else np.zeros(n)
    volume = rng.lognormal(np.log(_TYPICAL_VOLUME), 0.8, n) * (1 + move)
    volume_units = _whole_units(volume * 10**_VOLUME_DECIMALS, low=0)
    timestamps = start_ms + interval_ms * np.arange(n, dtype=np.int64)
    return [
        pa.array(timestamps),
        *(_fixed_point_text(cents, _PRICE_DECIMALS) for cents in (open_, high, low, close)),
        _fixed_point_text(volume_units, _VOLUME_DECIMALS),
    ]


def _whole_units(values: np.ndarray, low: int = 1) -> np.ndarray:
    """Round to whole cents (or volume units), never below ``low``."""
    return np.maximum(np.rint(values), low).astype(np.int64)


def _fixed_point_text(units: np.ndarray, decimals: int) -> pa.Array:
    """``12345`` with 2 decimals → ``"123.45"``, vectorised (formatting in Python is 10x
    slower for a year of minutes)."""
    scale = 10**decimals
    whole = pc.cast(pa.array(units // scale), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(units % scale), pa.string()), decimals, "0")
    return pc.binary_join_element_wise(whole, fraction, ".")
