"""The composition root's backtests: candles read (and cached) for a run, the paper
exchange and seeded ids wired, stored runs made again (``replay --check``, the API's
backtest jobs)."""

from __future__ import annotations

from adapters.clock import RandomIds
from application.bootstrap_stores import MEMORY_EVENT_STORE, open_trading

ENGINE_MODULES = ("application.trading", "application.backtest", "adapters.exchanges.paper",
                  MEMORY_EVENT_STORE)


def backtest(
    candles_path: str,
    config,
    *,
    fee_rate,
    balance=None,
    store_url: str = "memory",
    seed: str | None = None,
    keep_deals: bool = False,
    keep_equity: bool = False,
    on_progress=None,
    period: tuple[int | None, int | None] | None = None,
):
    """Run a backtest on a CSV file with the paper exchange; keep its events in ``store_url``.
    ``period``: only the candles opening from ``period[0]`` until ``period[1]`` (UTC ms,
    None: unbounded).

    The run's ids come from ``seed`` (recorded in its events), so re-running with the same
    seed, candles and configuration reproduces the stored events exactly."""
    return run_backtest_on(
        load_backtest_candles(candles_path, period), config, fee_rate=fee_rate,
        balance=balance, store_url=store_url, seed=seed or RandomIds().new_id().hex,
        keep_deals=keep_deals, keep_equity=keep_equity, on_progress=on_progress, period=period,
    )


def compare(candles_path: str, configs, *, fee_rate, balance=None, seed: str = "compare",
            period: tuple[int | None, int | None] | None = None, on_progress=None,
            keep_equity: bool = False):
    """Backtest every configuration on the same candles (read once), each into a memory
    store of its own with ids from ``seed``: ``(candles, results)``, results in the order
    of ``configs``."""
    candles = load_backtest_candles(candles_path, period)
    results = []
    for done, config in enumerate(configs, start=1):
        results.append(run_backtest_on(candles, config, fee_rate=fee_rate, balance=balance,
                                       store_url="memory", seed=seed, period=period,
                                       keep_equity=keep_equity))
        if on_progress is not None:
            on_progress(done, len(configs))
    return candles, results


def load_backtest_candles(candles_path: str, period: tuple[int | None, int | None] | None):
    """The file's candles (those of ``period`` when given), read and hashed while numpy
    and pyarrow import, and parsed while the engine's modules do (all mostly outside the
    GIL): or, for bytes parsed before, mapped from their parsed copy
    (adapters/marketdata/candle_cache.py)."""
    import importlib
    import os
    from concurrent.futures import ThreadPoolExecutor

    from adapters.marketdata.candle_file import caching_off, read_candle_file

    # Recorded in the run's events: absolute, so `replay --check` finds it from anywhere.
    path = os.path.abspath(candles_path)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candles") as loader:
        # A large file is hashed by its ends while its parsed copy may be read in its place
        reading = loader.submit(read_candle_file, path, ends_only=not caching_off())
        from adapters.marketdata.candle_cache import cache_directory, parse_cached

        # A file backtested before (the same bytes) is read from its parsed copy
        cache = cache_directory()
        loading = loader.submit(lambda read=reading: parse_cached(read.result(), cache))
        for module in ENGINE_MODULES:
            importlib.import_module(module)
        candles = loading.result()
        del reading, loading  # the file's bytes (as large as the file) are no longer needed
    return _in_period(candles, period)


def _in_period(candles, period: tuple[int | None, int | None] | None):
    """The candles of ``period`` (a run over part of a file), or all of them."""
    from application.backtest import ms_to_datetime
    from domain.errors import DomainError

    if period is None:
        return candles
    start, end = period
    shown = [("its start" if ms is None else ms_to_datetime(ms).isoformat()) for ms in period]
    if start is not None and end is not None and start >= end:
        raise DomainError(f"a period must start before it ends: from {shown[0]} to {shown[1]}",
                          code="INVALID_PERIOD", field="period")
    chosen = candles.between(start, end)
    if not len(chosen):
        until = "its end" if end is None else shown[1]
        raise DomainError(f"{candles.source} has no candle opening from {shown[0]} until "
                          f"{until}", code="NO_CANDLES", field="period")
    return chosen


def run_backtest_on(candles, config, *, fee_rate, balance, store_url, seed, trading=None,
                    **options):
    """Wire the paper exchange and seeded ids; ``trading`` (kept open) or ``store_url``."""
    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.backtest import run_backtest

    venue = PaperExchange(config.pair, fee_rate=fee_rate, quote_balance=balance)
    ids = SequentialIds(seed)
    app = trading or open_trading(store_url, ids=ids)
    try:
        return run_backtest(
            candles, config, venue=venue, ids=ids, append=app.append_collected,
            run_seed=seed, fee_rate=fee_rate, balance=balance, **options,
        )
    finally:
        if trading is None:
            app.close()


def rerun_backtest(run, candles_dir: str | None = None):
    """Re-run a stored backtest from its recorded inputs into a fresh memory store; returns
    that store's log. The candles file must still be there, byte for byte; with
    ``candles_dir``, a file of the same name in that folder is used when the recorded path
    holds none (the run stored elsewhere; its SHA-256 still has to match)."""
    import dataclasses
    import os

    from adapters.marketdata.csv_candles import load_candles
    from application.backtest import summary_keys_of
    from application.replay import read_log
    from domain.errors import DomainError

    path = run.candles_source
    if candles_dir is not None and not os.path.exists(path):
        path = os.path.join(candles_dir, os.path.basename(path))
    candles = load_candles(path)  # CANDLES_UNREADABLE if it is not there
    if run.candles_sha256 and candles.sha256 != run.candles_sha256:
        raise DomainError(
            f"{path} changed since the run (sha256 {candles.sha256[:12]}…, "
            f"recorded {run.candles_sha256[:12]}…)", code="CANDLES_CHANGED")
    # The re-run records the path the run recorded, wherever the file is read from now.
    candles = dataclasses.replace(candles, source=run.candles_source)
    fresh = open_trading("memory")
    run_backtest_on(_in_period(candles, run.period), run.config, fee_rate=run.fee_rate,
                    balance=run.balance, store_url="memory", seed=run.run_seed,
                    trading=fresh, summary_keys=summary_keys_of(run.summary),
                    period=run.period)
    return list(read_log(fresh))


def open_backtest_jobs(trading, library):
    """Backtests run for users in the background, recorded in ``trading``'s log, on series
    of ``library`` only."""
    from adapters.clock import SequentialIds
    from application.backtest_jobs import EQUITY_POINTS, BacktestJobs

    def run(asked, seed, on_progress):
        period = None if asked.period == (None, None) else asked.period
        candles = load_backtest_candles(str(library.path(asked.candles_file)), period)
        return run_backtest_on(candles, asked.config, fee_rate=asked.fee_rate,
                               balance=asked.balance, store_url="memory", seed=seed,
                               trading=trading, keep_deals=True, on_progress=on_progress,
                               period=period, equity_points=EQUITY_POINTS)

    def rerun(run_id):
        from domain.backtests import BacktestRun

        return rerun_backtest_result(trading.load(run_id, BacktestRun))

    return BacktestJobs(trading, trading.ids, run, lambda seed: SequentialIds(seed).new_id(),
                        rerun)


def rerun_backtest_result(run):
    """A stored run made again in memory, with its deals and exact equity points."""
    from adapters.marketdata.csv_candles import load_candles
    from application.backtest import summary_keys_of
    from application.backtest_jobs import EQUITY_POINTS
    from domain.errors import DomainError

    candles = load_candles(run.candles_source)
    if run.candles_sha256 and candles.sha256 != run.candles_sha256:
        raise DomainError(f"{run.candles_source} changed since the run", code="CANDLES_CHANGED")
    return run_backtest_on(_in_period(candles, run.period), run.config, fee_rate=run.fee_rate,
                           balance=run.balance, store_url="memory", seed=run.run_seed,
                           summary_keys=summary_keys_of(run.summary), period=run.period,
                           keep_deals=True, equity_points=EQUITY_POINTS)
