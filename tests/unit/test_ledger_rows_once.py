"""The ledgers run together (``shared_books.py``) freeze each row of their books once: the
open orders, deals and bots every one of them writes into its own tables are the same
database values, made once a batch (they were made three times, about a fifth of a take
profit wave's applying thread)."""

from __future__ import annotations

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import SQLiteViewStore
from projections.tables import Changes, Table
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, saw_levels


def test_ledgers_sharing_books_write_one_set_of_values_per_row(monkeypatch):
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("app"))
    a_day_of_trading(app)
    backtest(app, candle_rows(saw_levels(2)), seed="parts")
    made: list[tuple[Table, list[tuple]]] = []
    freeze = Changes.freeze

    def kept(self):
        frozen = freeze(self)
        made.extend((f.table, f.inserts + f.upserts) for f in frozen)
        return frozen

    monkeypatch.setattr(Changes, "freeze", kept)
    store = SQLiteViewStore(None)
    try:
        projector = Projector(app, store, [PROJECTIONS[n]() for n in ("pnl", "leaderboard",
                                                                      "equity")],
                              batch_size=7)
        projector.start()
        assert projector.shares_books()
        projector.catch_up()
    finally:
        store.close()
        app.close()
    by_table: dict[str, list[tuple]] = {}
    for table, rows in made:
        by_table.setdefault(table.name, []).extend(rows)
    for kind, names in (("orders", ("pnl_open_orders", "leaderboard_open_orders",
                                    "equity_open_orders")),
                        ("deals", ("pnl_deals", "leaderboard_open_deals",
                                   "equity_open_deals")),
                        ("bots", ("pnl_bots", "equity_bots"))):
        first, *others = (by_table[name] for name in names)
        objects = {id(values): values for values in first}
        assert first, kind
        for rows in others:  # every other table's row is the very values of the first's
            assert rows and all(objects.get(id(values)) is values for values in rows), kind

