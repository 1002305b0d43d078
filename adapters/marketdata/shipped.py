"""The real candle series shipped inside the package (provenance: ``data/README.md``)."""

from __future__ import annotations

from pathlib import Path

# The files sit next to this module (package data), so an editable or a regular install finds
# them without a working directory or a network.
_DATA_DIR = Path(__file__).resolve().parent / "data"

SHIPPED = (
    "binance_BTC_USDT-1m-2025-11.csv",
    "freqtrade_UNITTEST_BTC-1m.csv",
    "freqtrade_ETH_BTC-5m.csv",
    "freqtrade_XRP_ETH-1m.csv",
)


def shipped_series(name: str) -> Path:
    """Path of a shipped series, by file name with or without ``.csv``."""
    file_name = name if name.endswith(".csv") else f"{name}.csv"
    if file_name not in SHIPPED:
        raise LookupError(f"no shipped series {name!r}; shipped: {', '.join(SHIPPED)}")
    return _DATA_DIR / file_name
