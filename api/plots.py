"""Pictures people would rather see than read. matplotlib is imported only here."""

from __future__ import annotations

from datetime import UTC, datetime


def plot_backtest(path: str, candles_path: str, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adapters.marketdata.csv_candles import load_candles

    candles = load_candles(candles_path)
    times = [datetime.fromtimestamp(t / 1000, UTC) for t in candles.timestamps]
    fig, (price_ax, equity_ax) = plt.subplots(
        2, 1, figsize=(12, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    price_ax.plot(times, candles.close, lw=0.6, color="#555", label="close")
    by_ts = {int(t): i for i, t in enumerate(candles.timestamps)}
    for reason, color in (("take_profit", "tab:green"), ("stop_loss", "tab:red")):
        deals = [d for d in result.deals if d["reason"] == reason]
        price_ax.scatter([times[by_ts[d["opened"]]] for d in deals],
                         [float(d["avg_entry"]) for d in deals], marker="^", s=12,
                         color="tab:blue", label=None)
        price_ax.scatter([times[by_ts[d["closed"]]] for d in deals],
                         [float(d["exit"]) for d in deals], marker="v", s=14, color=color,
                         label=f"exit: {reason.replace('_', ' ')} ({len(deals)})")
    price_ax.set_ylabel(candles.source.rsplit("/", 1)[-1])
    price_ax.legend(loc="upper left", fontsize=8)
    equity_times = [datetime.fromtimestamp(t / 1000, UTC) for t in result.equity_times]
    equity_ax.plot(equity_times, [float(v) for v in result.equity_values], lw=0.8,
                   color="tab:purple")
    equity_ax.axhline(0, color="#999", lw=0.5)
    equity_ax.set_ylabel("equity (quote)")
    s = result.summary
    fig.suptitle(f"{s['deals_closed']} deals closed, realized {float(s['realized_pnl']):.2f}, "
                 f"max drawdown {float(s['max_drawdown']):.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
