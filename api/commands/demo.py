"""tradetape demo: a short tour of the core on real candles, stored so it can be inspected."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SERIES = "binance_BTC_USDT-1m-2025-11.csv"
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "dca_bot.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", default="sqlite:///var/demo.sqlite", metavar="URL",
                        help="where the demo run's events go (recreated for SQLite)")


def run(args: argparse.Namespace) -> int:
    from adapters.marketdata.shipped import shipped_series
    from api.cli import main as cli
    from application.settings import parse_database_url

    database = parse_database_url(args.database)
    for path in database.sqlite_files:  # the events and the read models: a fresh store
        path.unlink(missing_ok=True)
    candles = str(shipped_series(DEMO_SERIES))
    print(f"1. The bot: {EXAMPLE_CONFIG}; its ladder at 90,000 USDT:")
    cli(["dca-plan", "--config", str(EXAMPLE_CONFIG), "--price", "90000"])
    print(f"\n2. A backtest over a month of real Binance BTC/USDT 1m candles ({candles}),")
    print(f"   every order and deal decision appended as an event to {database.display}:")
    code = cli(["backtest", "--candles", candles, "--config", str(EXAMPLE_CONFIG),
                "--store", args.database, "--seed", "demo"])
    if code:
        return code
    print("\n3. Rebuild every aggregate from its events and re-run the backtest to prove the")
    print("   stored history is reproduced event for event:")
    code = cli(["replay", "--database", args.database, "--check"])
    deal_id = _first_deal(args.database)
    if deal_id:
        print(f"\n4. The first deal's history, every event with who caused it and when "
              f"(`tradetape events {deal_id} --database {args.database}`):")
        cli(["events", deal_id, "--database", args.database])
    print("\nTry `--as-of TIME` or `--version N` on `tradetape events` to see any aggregate as "
          "it was at that point.")
    return code


def _first_deal(url: str) -> str | None:
    from application.bootstrap import open_trading
    from application.replay import read_log
    from domain.deals import Deal
    from domain.recording import topic_of

    app = open_trading(url)
    try:
        return next((str(n.originator_id) for n in read_log(app, [topic_of(Deal.Opened)])),
                    None)
    finally:
        app.close()
