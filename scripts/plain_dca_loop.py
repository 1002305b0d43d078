"""A plain-Python float loop of the engine's DCA rules, CSV loading included.

It is the yardstick in scripts/bench_backtest.py: what a straightforward bot loop costs per
candle. Floats, no events, no exactness: only for speed comparison, never for results.
"""

from __future__ import annotations

import csv


def plain_dca(path: str, cfg: dict, fee: float = 0.001) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    candles = [(float(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]
    base, so_q, n_so = float(cfg["base_order_quote"]), float(cfg["safety_order_quote"]), int(
        cfg["max_safety_orders"])
    dev, vs, ss = (float(cfg[k]) for k in ("price_deviation_pct", "safety_volume_scale",
                                           "safety_step_scale"))
    tp = float(cfg["take_profit_pct"])
    sl = float(cfg["stop_loss_pct"]) if cfg.get("stop_loss_pct") else None
    realized, closed = 0.0, 0
    deal = None

    def open_deal(price):
        ladder, d, step, q = [], 0.0, 1.0, so_q
        for _ in range(n_so):
            d += dev * step
            step *= ss
            p = price * (1 - d / 100)
            ladder.append((p, q / p))
            q *= vs
        units = base / price
        return {"units": units, "cost": base, "fees": base * fee, "ladder": ladder}

    def targets(dl):
        avg = dl["cost"] / dl["units"]
        return avg * (1 + tp / 100), (avg * (1 - sl / 100) if sl else None)

    for o, h, low, c in candles:
        if deal is None:
            deal = open_deal(c)
            continue
        path = (o, low, h, c) if c >= o else (o, h, low, c)
        done = False
        prev = path[0]
        for point in path:
            lo_, hi_ = min(prev, point), max(prev, point)
            while deal["ladder"] and deal["ladder"][0][0] >= lo_:
                p, u = deal["ladder"].pop(0)
                fill = min(p, prev) if point < prev else p
                deal["units"] += u
                deal["cost"] += u * fill
                deal["fees"] += u * fill * fee
            take, stop = targets(deal)
            exit_price = None
            if stop is not None and lo_ <= stop:
                exit_price = min(stop, prev)
            elif hi_ >= take:
                exit_price = max(take, prev)
            if exit_price is not None:
                proceeds = deal["units"] * exit_price
                realized += proceeds - deal["cost"] - deal["fees"] - proceeds * fee
                closed += 1
                done = True
                break
            prev = point
        if done:
            deal = open_deal(c)
    return {"candles": len(candles), "deals_closed": closed, "realized_pnl": realized}
