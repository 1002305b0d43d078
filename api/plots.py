"""Pictures people would rather see than read. matplotlib is imported only here."""

from __future__ import annotations

import numpy as np

EXITS = (("take_profit", "tab:green"), ("stop_loss", "tab:red"))


def prepare_plot_path(path: str) -> None:
    """Make the picture's folder, or say now (before a long run) that it cannot be
    written: ``PLOT_UNWRITABLE``."""
    import os
    from pathlib import Path

    from api.commands.common import CommandError

    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError("PLOT_UNWRITABLE", f"cannot make {folder} for {path}: "
                           f"{error.strerror}") from None
    if Path(path).is_dir() or not os.access(folder, os.W_OK):
        raise CommandError("PLOT_UNWRITABLE", f"cannot write the picture to {path}")


def plot_backtest(path: str, result) -> None:
    """Price with every deal (entry, average entry held until the exit, exit) above the
    equity curve (realized P/L + the open deal marked at each close)."""
    import matplotlib.dates as mdates
    from matplotlib.collections import LineCollection

    candles = result.candles
    fig, price_ax, equity_ax = _price_over_equity(candles, price_share=3)
    deals = [*result.deals, *([result.open_deal] if result.open_deal else [])]
    opened = _at(np.array([d["opened"] for d in deals], dtype=np.int64))
    last = candles.timestamps[-1] if len(candles) else 0
    held_to = _at(np.array([last if d["closed"] is None else d["closed"] for d in deals],
                           dtype=np.int64))
    averages = np.array([float(d["avg_entry"]) for d in deals])
    # Dates as matplotlib's day numbers: a LineCollection takes no datetime64.
    segments = np.stack([mdates.date2num(opened), averages, mdates.date2num(held_to),
                         averages], axis=1).reshape(-1, 2, 2)
    price_ax.add_collection(LineCollection(segments, colors="tab:blue", linewidths=0.8,
                                           alpha=0.5, label="average entry, held"))
    price_ax.scatter(opened, [float(d["entry"]) for d in deals], marker="^", s=14,
                     color="tab:blue", label=f"entry ({len(deals)})", zorder=3)
    for reason, color in EXITS:
        closed = [d for d in result.deals if d["reason"] == reason]
        price_ax.scatter(_at(np.array([d["closed"] for d in closed], dtype=np.int64)),
                         [float(d["exit"]) for d in closed], marker="v", s=16, color=color,
                         label=f"exit: {reason.replace('_', ' ')} ({len(closed)})", zorder=3)
    price_ax.legend(loc="best", fontsize=8, framealpha=0.85)
    if result.equity is not None:
        equity_ax.plot(_closes(candles), result.equity, lw=0.8, color="tab:purple")
    s = result.summary
    fig.suptitle(f"{s['deals_closed']} deals closed, {s['deals_open']} open; realized "
                 f"{float(s['realized_pnl']):.2f}, unrealized {float(s['unrealized_pnl']):.2f}, "
                 f"max drawdown {float(s['max_drawdown']):.2f} (UTC)")
    fig.tight_layout()
    _save(fig, path)


def plot_comparison(path: str, candles, results: dict) -> None:
    """The price above each configuration's equity curve (``results``: by config file)."""
    from pathlib import Path

    fig, _, equity_ax = _price_over_equity(candles, price_share=2)
    closes = _closes(candles)
    ranked = sorted(results.items(), key=lambda item: -item[1].summary["total_pnl"])
    for config, result in ranked:
        s = result.summary
        equity_ax.plot(closes, result.equity, lw=0.8,
                       label=f"{Path(config).name}: total {float(s['total_pnl']):.2f}, "
                             f"max drawdown {float(s['max_drawdown']):.2f}")
    equity_ax.legend(loc="best", fontsize=8, framealpha=0.85)
    market = float(next(iter(results.values())).summary["market_change"]) * 100
    fig.suptitle(f"{len(results)} configurations, {len(candles)} candles, market {market:+.2f}%"
                 " (UTC)")
    fig.tight_layout()
    _save(fig, path)


def _price_over_equity(candles, price_share: int):
    """A figure with the close price above an (empty) equity panel, sharing a date axis:
    ``(figure, price axes, equity axes)``; the panels' heights are price_share : 5 - it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (price_ax, equity_ax) = plt.subplots(
        2, 1, figsize=(12, 7), sharex=True,
        gridspec_kw={"height_ratios": [price_share, 5 - price_share]},
    )
    price_ax.plot(_at(candles.timestamps), candles.close, lw=0.6, color="#555", label="close")
    price_ax.set_ylabel(candles.source.rsplit("/", 1)[-1])
    equity_ax.axhline(0, color="#999", lw=0.5)
    equity_ax.set_ylabel("equity (quote)")
    locator = mdates.AutoDateLocator()
    equity_ax.xaxis.set_major_locator(locator)
    equity_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig, price_ax, equity_ax


def _closes(candles) -> np.ndarray:
    """When each candle closed: equity is sampled then."""
    return _at(candles.timestamps + (candles.interval_ms or 0))


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    from api.commands.common import CommandError

    try:
        fig.savefig(path, dpi=110)
    except OSError as error:
        raise CommandError("PLOT_UNWRITABLE", f"cannot write the picture to {path}: "
                           f"{error.strerror or error}") from None
    finally:
        plt.close(fig)


def _at(ms: np.ndarray) -> np.ndarray:
    return ms.astype("datetime64[ms]")
