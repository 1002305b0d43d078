"""An api process waits for the views another process keeps (``serve --role projections``)
without polling them: each batch the projections commit on PostgreSQL NOTIFYs the views'
channel, and a waiting catch-up is woken by it and finds the views at the log's head."""

from __future__ import annotations

import threading
from decimal import Decimal

import psycopg
import pytest

from application.bootstrap import _SharedReadModels
from application.settings import _connect_kwargs, parse_database_url
from tests.projection_stubs import catch_up, view_store

pytestmark = pytest.mark.postgres
WAIT = 20.0  # seconds: far more than a catch-up takes; only reached when one is stuck


def test_a_batch_of_the_views_wakes_an_api_waiting_for_them(postgres_url, trading):
    app, store = trading(postgres_url), view_store(postgres_url)
    database = parse_database_url(postgres_url)
    shared = _SharedReadModels(app, database)
    listening = psycopg.connect(**_connect_kwargs(database.env), autocommit=True)
    try:
        catch_up(app, store)  # the views exist, at the (empty) log's head
        listening.execute(f'LISTEN "{store.channel}"')
        account = app.open_account(owner_id="carol", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", Decimal("12.5"), actor="carol")
        assert max(shared.lag().values()) > 0

        waiting = threading.Thread(target=shared.catch_up)
        waiting.start()  # an answer after a command waits for the views...
        catch_up(app, store)  # ...which another process brings up to the head
        waiting.join(WAIT)

        assert not waiting.is_alive()
        assert set(shared.lag().values()) == {0}
        said = [n.channel for n in listening.notifies(timeout=WAIT, stop_after=1)]
        assert said == [store.channel]  # the batch said so, with its commit
    finally:
        listening.close()
        shared.close()
        store.close()


def test_a_rebuild_says_so_on_the_views_channel(postgres_url, trading):
    """A rebuild's new generation is NOTIFYd like a batch: an api that keeps its read
    version while it hears nothing (api/graphql/change_watch.py) reads it again."""
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS

    app, store = trading(postgres_url), view_store(postgres_url)
    database = parse_database_url(postgres_url)
    listening = psycopg.connect(**_connect_kwargs(database.env), autocommit=True)
    try:
        account = app.open_account(owner_id="carol", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", Decimal("12.5"), actor="carol")
        catch_up(app, store)  # the views at the log's head: a rebuild applies nothing new
        listening.execute(f'LISTEN "{store.channel}"')
        generations = {row.name: row.generation for row in store.tracking().values()}

        rebuild(app, store, [PROJECTIONS["balances"]])

        said = [n.channel for n in listening.notifies(timeout=WAIT, stop_after=1)]
        assert said == [store.channel]
        assert store.tracking()["balances"].generation == generations["balances"] + 1
    finally:
        listening.close()
        store.close()
