"""What the backup tests compare: a store's log as stored, and its read models (now, or as
the projection code makes them from the log up to a position)."""

from __future__ import annotations

from application.bootstrap import open_trading
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import SQLiteViewStore
from tests.projection_stubs import dump, view_store


def log_rows(url: str) -> list[tuple]:
    app = open_trading(url)
    try:
        return [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
                for n in app.recorder.select_notifications(start=None, limit=1_000_000)]
    finally:
        app.close()


def views_at(url: str, position: int) -> dict[str, list[tuple]]:
    """Every read model of ``url`` made by the projection code from its log up to
    ``position``: what its views said when the log stood there."""
    app, store = open_trading(url), SQLiteViewStore(None)
    try:
        Projector(app, store, [cls() for cls in PROJECTIONS.values()]).catch_up(until=position)
        return dump(store)
    finally:
        store.close()
        app.close()


def views_of(url: str) -> dict[str, list[tuple]]:
    store = view_store(url)
    try:
        return dump(store)
    finally:
        store.close()
