"""A server's start on PostgreSQL opens its read models on a thread of their own while the
engine loads its bots: the restart book it is given is the projector's copy (the tables are
read once), the same book as one read from the tables, and the views are whole before the
first catch-up, lag or query."""

from __future__ import annotations

from decimal import Decimal

from application.bootstrap import _InProcessReadModels
from application.settings import parse_database_url
from projections import paper_book
from projections.paper_book import book_at_head
from projections.store import ViewStore
from tests.integration.test_restart_book import busy_world, candles  # noqa: F401 (fixture)
from tests.projection_stubs import catch_up, dump, view_store


def test_the_views_open_beside_the_start_and_give_it_the_book_they_loaded(postgres_url,
                                                                          candles,  # noqa: F811
                                                                          monkeypatch):
    world, _ = busy_world(postgres_url, candles)
    trading = world.trading
    plain = view_store(postgres_url)
    try:
        catch_up(trading, plain)  # every view at the log's head, as a server leaves them
        expected = dump(plain)
        account = trading.open_account(owner_id="u3", exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("2.5"), actor="u3")  # after their position

        read: list[str] = []  # the tables read, by any store of the views
        select = ViewStore.select
        monkeypatch.setattr(ViewStore, "select", lambda store, table, *a, **k: (
            read.append(table.name), select(store, table, *a, **k))[1])
        models = _InProcessReadModels(trading, parse_database_url(postgres_url))
        try:
            book = models.restart_book()  # asked at once, as the engine's first take does
            store = models.store  # the open is over before the store is read
            # The projector's copy: the start read each table of the book once, not twice
            books = [name for name in read if name.startswith("paper_book")]
            assert books and len(books) == len(set(books))
            assert paper_book.take_loaded(store) is None  # (taken)
            assert dump(store) == expected  # every view whole, at its position
            assert book == book_at_head(trading, plain)
            assert book.deposits[str(account)] == {"USDT": Decimal("2.5")}
            models.catch_up()
            assert set(models.lag().values()) == {0} and models.problems() == []
        finally:
            models.close()
    finally:
        plain.close()
        trading.close()
