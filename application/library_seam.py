"""The one place that says whether Tradetape may reach into eventsourcing's internals.

Every fast path below depends on how eventsourcing ``PINNED`` is built inside: private
attributes, its tables' layout read or written by hand-written SQL, its ``_type_``/``_data_``
JSON. Each asks ``fast_path(name)`` before it runs, and takes the library's own path when the
answer is no:

- ``TRADETAPE_LIBRARY_PATHS=1`` turns every one off (the library's path everywhere);
- an installed eventsourcing other than ``PINNED`` turns every one off, with one warning
  in the log (``tradetape.library``): the internals may have moved;
- a path's own switch, where it shipped with one, still works as it did
  (``TRADETAPE_LIBRARY_APPEND=1``, ``TRADETAPE_BULK_LOAD=0``).

This module sits in ``application`` so that ``application.bulk_load`` may ask it too
(dependencies point inward: the adapters and projections import it, never the reverse).

Switched fast paths (name: what, where, why, measured gain):

- ``append``: ``adapters/event_store/postgres.py`` ``ApplicationRecorder._append``: the
  library's INSERT, lock and NOTIFY (its ``lock_table_statements``, ``channel_name``,
  table and columns) sent statement by statement with binary column arrays, instead of
  its psycopg pipeline of one text composite array. WHY: the pipeline hung for good on an
  INSERT of tens of MB (27,000 events, 12 MB), and the text dump of the composite array
  was a third of a heavy step's processor time (~0.5 s of 1.2 s at 12,000 events).
  Own switch: ``TRADETAPE_LIBRARY_APPEND=1``.
- ``topic_reads``: ``adapters/event_store/topic_reads.py`` ``TopicReads.
  select_notifications``: the library's topic read, hand-written against its events table
  and sent unprepared. WHY: the library's prepared statement can settle on a generic plan
  that walks the whole log for a rare topic (a start's positions: 3.3 s on 1.7 million
  events, none found); unprepared, the read costs what it finds (the test counts < 100
  rows fetched for 2).
- ``bulk_load``: ``application/bulk_load.py`` with ``select_events_of``/``select_last_of``
  of ``adapters/event_store/postgres.py`` (``_ManyReads``: the library's events and
  snapshots tables read by hand, many aggregates a query), ``_FastDecoding`` (the
  transcoder's ``names`` and its ``_type_``/``_data_`` objects decoded by a tighter hook)
  and ``_still_at`` (the library's JSON of a timestamp matched as bytes). WHY: a restart
  loads tens of thousands of aggregates in a few round trips instead of one or two each
  (~3 ms a round trip on a busy server). Own switch: ``TRADETAPE_BULK_LOAD=0``.
- ``encoder``: ``application/transcodings.py`` ``PrebuiltJSONTranscoder``: the library's
  JSON encoder (its ``encoder`` settings and ``_encode_obj``) rebuilt once as a C encoder
  that remembers the last immutable value of each type, and an event's state written a
  field at a time (``application/flat_json.py``: the library's ``uuid_hex`` and
  ``decimal_str`` texts written directly, immutable values remembered by identity, the C
  encoder for the rest). WHY: ``json.JSONEncoder.encode`` builds a C encoder every call
  (as costly as encoding a small state); the timestamp and transcoding lookup were a
  tenth of a heavy candle's append; the C encoder's call back into Python for every id,
  amount and enum of a state was most of what was left (session 15: an order's
  ``to_stored_event`` 10.3 -> 6.3 us of processor time).
- ``stored_events``: ``adapters/event_store/batch_put.py`` ``BatchEventStore`` (PostgreSQL):
  the library's ``EventStore.put`` and ``Mapper.to_stored_event`` done for a whole batch
  (each kind's topic and class version found once), the ``Recording``/``Notification``
  objects made only when read. WHY: ~8% of a heavy candle's processor time at 10,000
  bots was the per-event mapping and two frozen dataclasses per event nobody read.
- ``sql_rebuild``: ``projections/sql_rebuild.py`` (with ``paper_book_sql.py``,
  ``balances_sql.py``): a rebuild reads the library's events table in SQL and decodes its
  ``_type_``/``_data_`` JSON in PostgreSQL. WHY: set-based SQL on PostgreSQL's processor
  instead of a Python handler per event (README: all ten projections of a 180,057-event
  log 5.14-5.35 s of Python without, 4.26-4.60 s with). Own switch:
  ``TRADETAPE_SQL_REBUILD=0``.
- ``memory_store``: ``adapters/event_store/memory.py``: the ``memory`` store, the library's
  POPO recorder with its private log, index and lock (``_stored_events``,
  ``_stored_events_index``, ``_database_lock``), events kept as domain events until read
  and indexed by ``UUID.int``. WHY: a backtest writes tens of thousands of events it never
  reads (none encoded until asked for), and ``UUID.__hash__`` is Python code run for every
  event appended (no figure measured in its comments).

- ``owner_scan``: ``api/graphql/owner_log.py`` ``OwnerLog``: the api learns whose each new
  event is (its answer cache's read versions) from one statement of ours against the
  library's events table that returns a state only where it contains ``"owner_id"``,
  instead of ``select_notifications`` reading every column of every row. WHY: 9.3-19.5 us
  of the api's processor time an event scanned through the library, 4.4-6.8 us this way
  (SQLite and PostgreSQL, switched on/off alternately). Own switch:
  ``TRADETAPE_OWNER_SCAN_SQL=0``.

- ``log_reads``: ``projections/reader.py`` ``LogReader``: the events table read by hand, a
  page a query, as tuples (``originator_id`` as text, the state in the binary format on
  PostgreSQL), on the view store's connection and a read-ahead thread's, instead of a
  ``Notification`` and a ``UUID`` per row. WHY: every rebuild and follower reads the whole log
  through it (README *Speed*: 2.7-4.2x as fast as the library's read, session 15).
  Switched off, the rows come from ``select_notifications`` and their ``recorded_at`` (a
  column of ours the library never reads back: without it time travel's views and the
  audit's ``recorded_at`` would change) from one query of that column alone by position
  range (``RecordedColumn``): the same rows (``tests/integration/test_projections.py``).

Internals used but not switched here (no library path gives what they give, or the
module may not ask):

- ``projections/reader.py`` ``RecordedTimes`` (and ``RecordedColumn`` on the library's
  path): ``recorded_at``, our column of the library's events table, read by hand: the
  library has no read of it.
- ``domain/recording.py``: our aggregates create and record events as the library's
  ``_create``/``trigger_event`` and ``mutate`` do, through its ``__base_init__``,
  ``_pending_events``, ``_version``, ``_modified_on`` and its events' field order (the
  engine records an event every few candles). The domain imports nothing of ours, so it
  cannot ask this seam: the pin's test (``tests/unit/test_library_seam.py``) and the
  domain's own tests are what notice a library that moved.
- the recorders' hooks (``_insert_events``, ``_create_table``, ``insert_events_statement``,
  ``create_table`` under a lock) of ``adapters/event_store/postgres.py``/``sqlite.py``: the
  seals, the recorded time and the DDL lock need them on every path.
- ``sealed_log_page``/``orphan_seals`` (both stores), ``scripts/clone_*.py``: the events
  table joined with ``event_seals`` (the audit; operator scripts).
- the projections' fact decoding (``projections/facts.py``, ``summaries.py``,
  ``frontend.py``, ``ledger.py``, ``paper_book.py``, ``wallet.py``) and
  ``application/exchange_accounts.py``: the stored JSON's ``_type_``/``_data_`` read as
  data. It is the persisted format (the events on disk), not an internal that can move.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache

PINNED = "9.5.6"  # the exact eventsourcing every fast path was written against
LIBRARY_PATHS_ENV = "TRADETAPE_LIBRARY_PATHS"  # "1": every fast path off
LIBRARY_APPEND_ENV = "TRADETAPE_LIBRARY_APPEND"  # "1": the library's append
BULK_LOAD_ENV = "TRADETAPE_BULK_LOAD"  # "0": one aggregate at a time, the library's load
OWNER_SCAN_ENV = "TRADETAPE_OWNER_SCAN_SQL"  # "0": the api learns owners the library's way

APPEND, TOPIC_READS, BULK_LOAD, ENCODER, SQL_REBUILD, MEMORY_STORE, OWNER_SCAN = (
    "append", "topic_reads", "bulk_load", "encoder", "sql_rebuild", "memory_store",
    "owner_scan")
LOG_READS, STORED_EVENTS = "log_reads", "stored_events"
PATHS = frozenset({APPEND, TOPIC_READS, BULK_LOAD, ENCODER, SQL_REBUILD, MEMORY_STORE,
                   OWNER_SCAN, LOG_READS, STORED_EVENTS})

log = logging.getLogger("tradetape.library")
_warned: set[str] = set()


@cache
def installed_version() -> str:
    """eventsourcing's version, as ``importlib.metadata.version`` gives it. Read from the one
    ``eventsourcing-*.dist-info`` beside the imported package when there is one: importing
    ``importlib.metadata`` (zipfile, email, csv, tempfile...) cost every command that opens
    a store ~25 ms of processor time, the largest fixed cost of a backtest after numpy's and
    pyarrow's imports (bt16, session 15). Anything else asks importlib.metadata."""
    found = _version_beside_package()
    if found is not None:
        return found
    from importlib.metadata import version

    return version("eventsourcing")


def _version_beside_package() -> str | None:
    """The ``Version:`` of the metadata installed beside ``eventsourcing``, or None when
    that directory holds no such metadata, or more than one (left to importlib.metadata)."""
    import eventsourcing

    site = os.path.dirname(os.path.dirname(os.path.abspath(eventsourcing.__file__)))
    try:
        infos = [entry for entry in os.listdir(site)
                 if entry.startswith("eventsourcing-") and entry.endswith(".dist-info")]
        if len(infos) != 1:
            return None
        with open(os.path.join(site, infos[0], "METADATA"), encoding="utf-8") as metadata:
            for line in metadata:  # the headers end at the first blank line
                if not line.strip():
                    return None
                if line.startswith("Version:"):
                    return line.removeprefix("Version:").strip()
    except OSError:
        return None
    return None


def version_matches() -> bool:
    """Whether the installed eventsourcing is ``PINNED``; the first time it is not, a
    warning says so (once per version found, however many paths ask)."""
    found = installed_version()
    if found == PINNED:
        return True
    if found not in _warned:
        _warned.add(found)
        log.warning("eventsourcing %s is installed, the fast paths were written against %s: "
                    "all of them are off, the library's own paths are used", found, PINNED)
    return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "y", "yes", "t", "true", "on")


def fast_path(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the fast path ``name`` may run. ``env``: where the switches are read (an
    application's environment; the process's by default)."""
    if name not in PATHS:  # a typo would otherwise leave a path on for good
        raise ValueError(f"unknown fast path {name!r}")
    env = os.environ if env is None else env
    if _truthy(env.get(LIBRARY_PATHS_ENV)) or not version_matches():
        return False
    if name == APPEND:  # read as it always was (an unknown value is refused: ValueError)
        from eventsourcing.utils import strtobool

        return not strtobool(env.get(LIBRARY_APPEND_ENV) or "no")
    if name == BULK_LOAD:
        return env.get(BULK_LOAD_ENV, "1") != "0"
    if name == OWNER_SCAN:
        return env.get(OWNER_SCAN_ENV, "1") != "0"
    return True
