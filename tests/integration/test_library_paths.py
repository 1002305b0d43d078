"""Every fast path through eventsourcing's internals off (``TRADETAPE_LIBRARY_PATHS=1``, or
an eventsourcing other than the pinned one): the same trading stores the same bytes, reads
the same rows of a few topics, loads the same aggregates and rebuilds the same views as with
them on, on every store (application/library_seam.py)."""

from __future__ import annotations

import contextlib
import logging

import pytest

from adapters.event_store.batch_put import BatchEventStore
from adapters.event_store.memory import MemoryRecorder
from adapters.security.audit_key import AUDIT_KEY_ENV
from application import bulk_load, library_seam
from application.replay import read_log
from domain.bots import Bot
from domain.deals import Deal
from domain.orders import Order
from tests.integration.test_snapshots import state
from tests.unit.test_bulk_decoding import a_traded_log

OFF = ["switch", "another version"]


def turn_off(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "switch":
        monkeypatch.setenv(library_seam.LIBRARY_PATHS_ENV, "1")
    else:
        monkeypatch.setattr(library_seam, "installed_version", lambda: "9.6.0")


def fast_paths_taken(trading) -> set[str]:
    """The fast paths this application takes, as its parts say."""
    taken = set()
    if trading.mapper.transcoder._encode_fast is not None:
        taken.add("encoder")
    recorder = trading.recorder
    if getattr(recorder, "library_append", True) is False:
        taken.add("append")
    if getattr(recorder, "fast_topic_reads", False):
        taken.add("topic_reads")
    if bulk_load.enabled(trading):
        taken.add("bulk_load")
    if isinstance(recorder, MemoryRecorder):
        taken.add("memory_store")
    if isinstance(trading.events, BatchEventStore):
        taken.add("stored_events")
    return taken


def what_a_user_sees(trading) -> dict:
    log = [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
           for n in read_log(trading)]
    kinds: dict[str, list] = {}
    for _, oid, _, topic, _ in log:
        kind = topic.rsplit(":", 1)[1].split(".")[0]
        if oid not in kinds.setdefault(kind, []):
            kinds[kind].append(oid)
    deal_topics = sorted({t for *_, t, _ in log if ":Deal." in t})
    few = trading.recorder.select_notifications(3, 1000, topics=deal_topics,
                                                inclusive_of_start=False)
    for aggregate_id in [i for ids in kinds.values() for i in ids]:  # the store, not a cache
        with contextlib.suppress(KeyError, AttributeError):
            trading.repository.cache.get(aggregate_id, evict=True)
    loaded = {kind.__name__: {i: state(a) for i, a in
                              trading.load_many(kinds.get(kind.__name__, []), kind).items()}
              for kind in (Bot, Deal, Order)}
    return {"log": log, "few": [(n.id, n.topic, n.state) for n in few], "loaded": loaded}


@pytest.mark.parametrize("how", OFF)
def test_the_same_trading_gives_the_same_bytes_and_rows_with_the_library_paths(
        store_url, another_store_url, monkeypatch, how):
    monkeypatch.setenv(AUDIT_KEY_ENV, "k" * 64)  # (no key file written per schema)
    fast = a_traded_log(store_url)
    try:
        fast_taken, with_fast = fast_paths_taken(fast), what_a_user_sees(fast)
    finally:
        fast.close()
    with monkeypatch.context() as patch:
        turn_off(patch, how)
        library = a_traded_log(another_store_url)
        try:
            library_taken, with_library = fast_paths_taken(library), what_a_user_sees(library)
        finally:
            library.close()

    expected = {"encoder"}
    if store_url.startswith("postgres"):
        expected |= {"append", "topic_reads", "bulk_load", "stored_events"}
    if store_url == "memory":
        expected.add("memory_store")
    assert fast_taken == expected
    assert library_taken == set()
    assert with_library == with_fast
    assert len(with_fast["log"]) > 50 and with_fast["few"]
    assert with_fast["loaded"]["Bot"] and with_fast["loaded"]["Deal"]


@pytest.mark.parametrize("how", OFF)
def test_a_rebuild_gives_the_same_views_with_the_library_paths(postgres_url, monkeypatch,
                                                               caplog, how):
    """The SQL rebuild reads the library's table and JSON by hand: off, every projection is
    rebuilt by its Python handlers, to the same rows."""
    from projections.rebuild import rebuild
    from tests.integration.test_sql_rebuild import BOOK, TAKEN
    from tests.projection_stubs import dump, view_store

    caplog.set_level(logging.INFO, "projections.sql_rebuild")
    monkeypatch.setenv("TRADETAPE_SQL_REBUILD", "all")
    trading, store = a_traded_log(postgres_url), view_store(postgres_url)
    try:
        rebuild(trading, store, BOOK, batch_size=97)
        in_sql, taken = dump(store, BOOK), caplog.text.count(f"paper_book+balances {TAKEN}")
        caplog.clear()
        with monkeypatch.context() as patch:
            turn_off(patch, how)
            rebuild(trading, store, BOOK, batch_size=97)
        in_python, taken_off = dump(store, BOOK), caplog.text.count(TAKEN)
    finally:
        store.close()
        trading.close()
    assert (taken, taken_off) == (1, 0)  # paper_book and balances in SQL, then neither
    assert in_python == in_sql
    assert in_sql["paper_book_orders"] and in_sql["paper_book_assets"]
