"""tradetape candles fetch --exchange ID --pair BTC/USDT --timeframe 1m --from TIME [--to TIME]
--out FILE.csv [--sandbox] [--page-size N] [--no-progress]"""

from __future__ import annotations

import argparse
import sys

from api.commands.common import EXIT_FAILED, EXIT_OK, CommandError

# The exchange could not answer, or answered with candles a backtest would refuse: the
# command failed (exit 1); anything else is a question to fix (exit 2).
_FAILURES = {"EXCHANGE_UNAVAILABLE", "EXCHANGE_ERROR", "BAD_CANDLE_DATA", "CANDLES_UNWRITABLE"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch", help="download an exchange's candles into a backtest CSV (resumes a file)",
        description="Download closed candles through ccxt into the backtest's CSV format. "
        "Run again on the same file to go on after its last candle.")
    fetch.add_argument("--exchange", required=True, metavar="ID", help="ccxt exchange id, "
                       "e.g. binance")
    fetch.add_argument("--pair", required=True, help="spot pair, e.g. BTC/USDT")
    fetch.add_argument("--timeframe", default="1m", help="candle length as ccxt names it "
                       "(default 1m)")
    fetch.add_argument("--from", dest="period_from", required=True, metavar="TIME",
                       help="candles opening at or after TIME (ISO 8601, UTC unless it says "
                       "otherwise, or UTC milliseconds)")
    fetch.add_argument("--to", dest="period_to", metavar="TIME",
                       help="candles opening before TIME (default: up to the last closed one)")
    fetch.add_argument("--out", required=True, metavar="FILE.csv",
                       help="the CSV to write; an existing one is resumed after its last candle")
    fetch.add_argument("--sandbox", action="store_true", help="the exchange's sandbox "
                       "(testnet); $TRADETAPE_SANDBOX_HOST replaces its host")
    fetch.add_argument("--page-size", type=int, default=None, metavar="N",
                       help="candles per request (default: the most the exchange allows)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from domain.errors import DomainError

    try:
        return _fetch(args)
    except DomainError as error:
        exit_code = EXIT_FAILED if error.code in _FAILURES else 2
        raise CommandError(error.code, error.message, exit_code) from None
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        raise


def _fetch(args: argparse.Namespace) -> int:
    from api.progress import progress_bar
    from application.bootstrap import open_candle_download
    from application.candle_download import download_candles

    from_ms, to_ms = _period(args)
    history, open_file = open_candle_download(args.exchange, sandbox=args.sandbox,
                                              out=args.out)
    timeframe_ms = history.timeframe_ms(args.timeframe)
    history.check_pair(args.pair)  # the exchange is asked before the file is made
    out = open_file()
    try:
        _check_file(out, args, timeframe_ms)
        show = not args.no_progress and sys.stderr.isatty()
        with progress_bar(f"{args.pair} {args.timeframe}", enabled=show) as advance:
            report = download_candles(
                history, out, pair=args.pair, timeframe=args.timeframe,
                timeframe_ms=timeframe_ms, from_ms=from_ms, to_ms=to_ms,
                page=args.page_size or history.page_limit(), on_progress=advance,
                on_gap=lambda gap: print(f"gap: {gap.describe()}", file=sys.stderr))
    finally:
        out.close()
    print(_summary(args.out, report, out.last_ts))
    return EXIT_OK


def _period(args: argparse.Namespace) -> tuple[int, int]:
    """``--from``/``--to`` in UTC ms (as ``backtest`` reads them); no ``--to``: no end."""
    from api.commands.backtest import LATEST_MS, _ms

    from_ms = _ms(args.period_from, "--from")
    to_ms = _ms(args.period_to, "--to") if args.period_to else LATEST_MS + 1
    if to_ms <= from_ms:
        raise CommandError("INVALID_TIME", "--to must be after --from")
    if args.page_size is not None and not 2 <= args.page_size <= 100_000:
        raise CommandError("INVALID_PAGE_SIZE", "--page-size must be between 2 and 100000")
    return from_ms, to_ms


def _check_file(out, args: argparse.Namespace, timeframe_ms: int) -> None:
    if out.dropped_partial_line:
        print(f"{args.out}: dropped a partial last line (an interrupted write)",
              file=sys.stderr)
    if out.interval_ms is not None and out.interval_ms != timeframe_ms:
        raise CommandError("CANDLES_FILE_MISMATCH", f"{args.out} holds candles "
                           f"{out.interval_ms // 1000} s apart, not {args.timeframe}")


def _summary(path: str, report, last_ts: int | None) -> str:
    from application.candle_download import iso

    if report.written:
        return (f"{path}: {report.written} candles added ({iso(report.first_ms)} to "
                f"{iso(report.last_ms)}), {len(report.gaps)} gap(s), "
                f"{report.requests} request(s)")
    last = f"its last candle opens {iso(last_ts)}" if last_ts is not None else "no candle"
    return f"{path}: up to date, nothing closed to add ({last})"
