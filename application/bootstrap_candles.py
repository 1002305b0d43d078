"""The composition root's candle series: the library users backtest on (shipped series,
the candle directory) and the series downloaded for them in the background."""

from __future__ import annotations

from application.bootstrap_exchanges import open_candle_download
from application.settings import parse_database_url

SHIPPED_FIRST = "binance_BTC_USDT-1m-2025-11.csv"


def open_candle_library(settings):
    """The shipped series, then the server's candle directory (``TRADETAPE_CANDLE_DIR``)."""
    from pathlib import Path

    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.candle_library import CandleLibrary

    directories = [shipped_series(SHIPPED_FIRST).parent]
    if settings.candle_dir:
        directories.append(Path(settings.candle_dir))
    fetched = candle_fetch_directory(settings)
    if fetched is not None and fetched not in directories:
        directories.append(fetched)
    return CandleLibrary(directories, load_candles)


def candle_fetch_directory(settings):
    """Where series fetched for users are written (``fetchCandles``): the candle directory,
    else ``candles/`` beside a SQLite store; None for another store without one."""
    from pathlib import Path

    if settings.candle_dir:
        directory = Path(settings.candle_dir)
    else:
        database = parse_database_url(settings.database_url)
        if database.sqlite_path is None:
            return None
        directory = database.sqlite_path.parent / "candles"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # the server runs on; a fetch says CANDLE_DIR_NOT_SET
        import logging

        logging.getLogger("tradetape.candles").warning(
            "cannot make the candle directory %s (%s): fetched series are off", directory,
            type(error).__name__)
        return None
    return directory


def open_candle_fetches(settings, ids):
    """Candle series downloaded for users in the background, through the same ccxt history
    as ``tradetape candles fetch`` (``TRADETAPE_SANDBOX_HOST`` for sandboxes)."""
    from adapters.marketdata.candle_csv_writer import CandleCsvWriter
    from application.candle_fetches import CandleFetches

    def history(exchange_id: str, sandbox: bool):
        return open_candle_download(exchange_id, sandbox=sandbox, out="")[0]

    return CandleFetches(candle_fetch_directory(settings), history, CandleCsvWriter, ids)
