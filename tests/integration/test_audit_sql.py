"""The audit log computed by PostgreSQL in a rebuild (``projections/audit_sql.py``) holds
the rows the Python projection writes, byte for byte (hashes, summaries, times): for
every stored event type with plain, non-ASCII and quoting text, for random logs, and for
what SQL leaves to Python (events without a template, escaped text, NUL)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections import sql_rebuild
from projections.audit import AuditLog
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.summaries import TEMPLATES
from tests.conftest import require_postgres
from tests.integration.conftest import T0
from tests.integration.test_projection_properties import operations, play, postgres_store
from tests.integration.test_sql_rebuild import SLOW
from tests.projection_stubs import dump, view_store
from tests.unit.test_projection_fast_paths import ODD_TEXT, TOPICS, stored_events

# (beside another projection: alone, a rebuild keeps it in Python)
AUDITED = [AuditLog, PROJECTIONS["backtests"]]
FALLBACK, TAKEN = "in Python instead", "in SQL up to position"
FINISHED = re.compile(r"audit rows finished in Python: (\d+)")


@pytest.fixture(autouse=True)
def _postgres():
    require_postgres()


@contextmanager
def opened(url: str) -> Iterator[tuple]:
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("audit"))
    store = view_store(url)
    try:
        yield app, store
    finally:
        store.close()
        app.close()


def both_ways(app, store) -> tuple[dict, dict]:
    """The tables rebuilt with the audit log in SQL, then in Python."""
    dumps = []
    for enabled in (True, False):
        sql_rebuild.ENABLED, sql_rebuild.BUILT = enabled, {"audit"}
        try:
            rebuild(app, store, AUDITED, batch_size=97)
        finally:
            sql_rebuild.ENABLED, sql_rebuild.BUILT = None, None
        dumps.append(dump(store, AUDITED))
    return dumps[0], dumps[1]


def every_type(app, odd: str) -> list[StoredEvent]:
    """One stored event of every type (each of an aggregate of its own: the samples'
    ids repeat)."""
    return [StoredEvent(UUID(int=n), 1, row[3], row[4])
            for n, (_, row) in enumerate(stored_events(app, odd), start=1)]


def finished_in_python(caplog) -> int:
    return sum(int(n) for n in FINISHED.findall(caplog.text))


@pytest.mark.parametrize("odd", [
    "plain ASCII",
    "é \U0001f600 \"quoted\" {braces} 'single' 50% \\ end \t tab",
])
def test_every_event_type_gives_the_same_rows_both_ways(postgres_url, caplog, odd):
    caplog.set_level(logging.INFO, "projections")
    with opened(postgres_url) as (app, store):
        app.recorder.insert_events(every_type(app, odd))
        in_sql, in_python = both_ways(app, store)
    assert in_sql == in_python
    assert len(in_sql["audit_log"]) == len(TOPICS)
    assert TAKEN in caplog.text and FALLBACK not in caplog.text
    # SQL wrote the summary of most templated events itself (those holding a list, a dict
    # or a \u escape are Python's); every event without a template is Python's
    templated = sum(1 for t in TOPICS if t.partition(":")[2] in TEMPLATES)
    left = finished_in_python(caplog)
    assert len(TOPICS) - templated <= left < len(TOPICS) - templated // 2


def test_text_the_views_escape_gives_the_same_rows_both_ways(postgres_url, caplog):
    """NUL (which PostgreSQL's JSON refuses: the whole audit log in Python) and ␀."""
    caplog.set_level(logging.INFO, "projections")
    with opened(postgres_url) as (app, store):
        app.recorder.insert_events(every_type(app, ODD_TEXT))
        in_sql, in_python = both_ways(app, store)
    assert FALLBACK in caplog.text
    assert in_sql == in_python
    assert any("\u24000000" in (row[8] or "") for row in in_sql["audit_log"])


def test_random_logs_give_the_same_rows_both_ways(tmp_path, caplog):
    caplog.set_level(logging.INFO, "projections")

    @settings(SLOW, max_examples=6)
    @given(ops=operations)
    def run(ops):
        caplog.clear()
        with postgres_store(tmp_path) as url, opened(url) as (app, store):
            play(app, ops)
            in_sql, in_python = both_ways(app, store)
        assert in_sql == in_python
        assert TAKEN in caplog.text and FALLBACK not in caplog.text
        assert finished_in_python(caplog) < max(1, len(in_sql["audit_log"]))

    run()


def test_an_event_of_an_older_class_version_is_summarised_as_upcast(postgres_url, caplog):
    """A bot created before bots had a mode (v1): its upcaster says paper, which SQL cannot
    know; the row is Python's."""
    caplog.set_level(logging.INFO, "projections")
    with opened(postgres_url) as (app, store):
        (created,) = [event for event in every_type(app, "plain ASCII")
                      if event.topic.endswith(":Bot.Created")]
        state = json.loads(created.state)
        assert state.pop("class_version") == 2
        del state["mode"]
        app.recorder.insert_events([StoredEvent(created.originator_id, 1, created.topic,
                                                json.dumps(state).encode())])
        in_sql, in_python = both_ways(app, store)
    assert TAKEN in caplog.text and finished_in_python(caplog) == 1
    assert in_sql == in_python
    (row,) = in_sql["audit_log"]
    assert row[8].endswith("(paper)")


@pytest.mark.parametrize("token, shown", [
    ("1E2", "100.0"), ("1.50", "1.5"), ("true", "True"), ("-7", "-7"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ('{"_type_":"decimal_str","_data_":"2.50"}', "2.50"), ("[1]", "[1]")])
def test_a_number_is_shown_as_python_reads_it(postgres_url, caplog, token, shown):
    """JSON numbers as Python shows them: ``1E2`` is a float to Python, and a jsonb ``100``."""
    caplog.set_level(logging.INFO, "projections")
    with opened(postgres_url) as (app, store):
        (filled,) = [event for event in every_type(app, "plain ASCII")
                     if event.topic.endswith(":Deal.BuyFilled")]
        state = json.loads(filled.state)
        state["safety_order"] = "TOKEN"
        stored = json.dumps(state, separators=(",", ":")).replace('"TOKEN"', token)
        app.recorder.insert_events([StoredEvent(filled.originator_id, 1, filled.topic,
                                                stored.encode())])
        in_sql, in_python = both_ways(app, store)
    assert TAKEN in caplog.text
    assert in_sql == in_python
    (row,) = in_sql["audit_log"]
    assert row[8].endswith(f"(safety order {shown})")
