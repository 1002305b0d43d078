"""Rebuilding projections inside PostgreSQL: set-based SQL over the stored events instead of
a Python handler per event.

A projection whose rows are a pure function of the events, and that SQL can compute to the
digit, declares a builder (``BUILDERS``). In a rebuild on PostgreSQL, with the events in the
views' schema, stored as plain JSON (no cipher, no compressor) and in their current class
version, its shadow tables are filled by one transaction on a connection of its own, in a
thread that only waits for the database: the work runs on PostgreSQL's process (another
processor) while this one rebuilds the other projections. The projection then carries on in
Python from the tables (as a runner does after a crash) over the events after the position
the SQL saw. Anything the SQL cannot do exactly (a text PostgreSQL's JSON refuses, a number
in exponent form, a sum past 28 digits' reach) raises, the transaction rolls back, and that
projection is rebuilt by its Python handlers from the start instead: the rows are the same
either way (a test holds them equal).

Money is ``numeric`` in the database, never float. Python's Decimal rounds every operation
to 28 significant digits (half even); the SQL does the same, step by step in log order,
with ``pg_temp.r28`` and the ordered aggregate ``pg_temp.sum28``, so running sums carry the
same last digits. SQLite keeps the Python path.

``TRADETAPE_SQL_REBUILD`` in the environment, read when a rebuild starts: ``0`` (or unset)
builds none in SQL, ``1`` builds ``paper_book`` so, ``all`` ``balances`` and ``audit``
(``projections/audit_sql.py``) too; any other value is refused
(``BAD_SQL_REBUILD``) rather than taken for one of them. ``ENABLED`` and ``BUILT``, when set,
take the environment's place (the tests compare both paths).
"""

from __future__ import annotations

import decimal
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.utils import resolve_topic

from application.library_seam import SQL_REBUILD, fast_path
from projections.framework import Projection
from projections.runner import DEFAULT_BATCH, Progress, ProjectionError, Projector
from projections.store import SHADOW, PostgresViewStore, ViewStore
from projections.tables import Changes, Row, Table

SETTING = "TRADETAPE_SQL_REBUILD"
# Which projections each value builds in SQL. Each builder is exact (tested against the
# Python path) but costs PostgreSQL more processor time than the Python it saves, and a
# rebuild on two cores keeps both busy (the handlers' clock is 1.5-2x their
# processor time even on a quiet machine): every processor second counts, wherever it is
# spent. So none by default. On the 180,057-event bench log (issue 16, session 17, the
# rebuild of all, processor time of the process and its backends, three rounds alternated
# at load 10-12): paper_book in SQL 49.6 / 50.4 / 48.9 us an event, in Python 41.8 / 40.0 /
# 40.4 (the main thread 0.9 us more, the backends 9.9 less). balances about 3 s of the
# database's against 0.6 s of Python; audit 3.2-3.5 s against 1.4-1.6 s.
CHOICES = {"0": frozenset(), "1": frozenset({"paper_book"}),
           "all": frozenset({"paper_book", "balances", "audit"})}
DEFAULT = "0"  # unset: as TRADETAPE_SQL_REBUILD=0
ENABLED: bool | None = None  # None: as the environment says
BUILT: set[str] | None = None
log = logging.getLogger(__name__)

# Rounding as Python's default decimal context does it: 28 significant digits, half even
# (PostgreSQL's round() goes half away from zero). A value needing a negative scale (more
# than 28 digits before the point) raises: Decimal would write it with an exponent.
_ROUND = """
  d int := length(ltrim(replace(abs(y)::text, '.', ''), '0'));
  n int; t numeric; r numeric;
BEGIN
  IF d <= 28 THEN RETURN y; END IF;
  n := scale(y) - (d - 28);
  IF n < 0 THEN RAISE EXCEPTION 'SQL_REBUILD_INEXACT: % has too many digits', y; END IF;
  t := trunc(y, n);
  r := round(y, n);
  IF r <> t AND 2 * abs(y - t) = abs(r - t)
     AND right(replace(abs(t)::text, '.', ''), 1)::int % 2 = 0 THEN
    r := t;  -- a tie: to the even neighbour
  END IF;
  IF length(ltrim(replace(abs(r)::text, '.', ''), '0')) > 28 THEN  -- 9.99..95 -> 10.00..0
    IF n = 0 THEN RAISE EXCEPTION 'SQL_REBUILD_INEXACT: % carries past 28 digits', y; END IF;
    r := trunc(r, n - 1);
  END IF;
  RETURN r;
END"""
# (the rounding written out in both: a sum's step calling r28 cost twice the time, measured)
FUNCTIONS = f"""
CREATE FUNCTION pg_temp.r28(y numeric) RETURNS numeric LANGUAGE plpgsql IMMUTABLE STRICT
  AS $$DECLARE {_ROUND} $$;
CREATE FUNCTION pg_temp.add28(s numeric, x numeric) RETURNS numeric LANGUAGE plpgsql
  IMMUTABLE STRICT AS $$DECLARE y numeric := s + x; {_ROUND} $$;
CREATE AGGREGATE pg_temp.sum28(numeric) (sfunc = pg_temp.add28, stype = numeric,
  initcond = '0');
CREATE FUNCTION pg_temp.uid(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$SELECT (v->>'_data_')::uuid::text$$;
CREATE FUNCTION pg_temp.val(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$SELECT CASE WHEN jsonb_typeof(v) = 'object' AND v ? '_type_' THEN v->>'_data_'
               ELSE v #>> '{{}}' END$$;
"""
# Every stored Decimal the builders read must have a scale numeric can keep: "1.5E-7" is
# 0.00000015 to the same 8 places, but numeric reads "1E+2" as 100, which Decimal keeps (and
# writes) with its exponent; NaN and infinities are no sums at all.
PLAIN_DECIMALS = r"^-?[0-9]+(\.[0-9]+)?([eE]-[0-9]+)?$"


class Builder:
    """How one projection's tables are computed in SQL. ``kinds``: the event kinds it reads
    (``"Order.Filled"``); ``build(cur)`` runs with those events in the temporary table
    ``ev(pos, oid, kind, s jsonb)`` and returns every row of each table."""

    kinds: tuple[str, ...] = ()
    decimal_fields: tuple[str, ...] = ()
    # True: ``fill`` writes the shadow tables itself (rows too many to cross into Python
    # and back), ``build`` is not called
    in_place = False

    def build(self, cur: Any) -> dict[Table, list[Row]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fill(self, cur: Any, app: Application, store: ViewStore,
             head: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def chosen() -> frozenset[str]:
    """The projections to build in SQL, as ``ENABLED``/``BUILT`` or else the environment
    say; a ProjectionError (``BAD_SQL_REBUILD``) for a value it does not know."""
    value = os.environ.get(SETTING, DEFAULT)
    if value not in CHOICES and (ENABLED is None or BUILT is None):
        raise ProjectionError("BAD_SQL_REBUILD", f"{SETTING}={value!r} is not one of "
                              f"{', '.join(CHOICES)} (0: off, 1: paper_book, all: balances and "
                              "audit too)")
    if ENABLED is False:
        return frozenset()
    return frozenset(BUILT) if BUILT is not None else CHOICES[value]


def builders() -> dict[str, Callable[[], Builder]]:
    from projections.audit_sql import AuditSql
    from projections.balances_sql import BalancesSql
    from projections.paper_book_sql import PaperBookSql

    made = {"paper_book": PaperBookSql, "balances": BalancesSql, "audit": AuditSql}
    built = chosen()
    return {name: builder for name, builder in made.items() if name in built}


def usable(app: Application, store: ViewStore) -> bool:
    """Whether this rebuild can read the events in SQL: PostgreSQL, the log in the views'
    schema, stored as JSON as it is, and Python rounding as the SQL does."""
    if not chosen() or not fast_path(SQL_REBUILD) or not isinstance(store, PostgresViewStore):
        return False
    recorder, mapper = app.recorder, app.mapper
    datastore = getattr(recorder, "datastore", None)
    if getattr(datastore, "schema", None) != store.schema:
        return False
    if getattr(mapper, "cipher", None) or getattr(mapper, "compressor", None):
        return False
    context = decimal.getcontext()
    return context.prec == 28 and context.rounding == decimal.ROUND_HALF_EVEN


class SqlRebuild:
    """The projections of a rebuild built in SQL, in a thread, beside the Python rebuild
    of the others (``start``), then carried on in Python to the log's head (``finish``)."""

    def __init__(self, app: Application, store: ViewStore,
                 classes: Sequence[type[Projection]], batch_size: int = DEFAULT_BATCH):
        made = builders() if usable(app, store) else {}  # (refuses an unknown setting)
        self.app, self.store, self.batch_size = app, store, batch_size
        self.classes = [cls for cls in classes if cls.name in made]
        if len(self.classes) == len(classes):
            # Nothing for this process to do meanwhile: the SQL costs PostgreSQL more
            # processor time than the handlers cost here (measured: paper_book alone 2 s
            # of the database's against 1.2 s of Python and 0.45 s of the database's).
            self.classes = []
        self.builders = {cls.name: made[cls.name]() for cls in self.classes}
        self.position = 0  # the last event the SQL saw
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.projector: Projector | None = None

    @property
    def names(self) -> list[str]:
        return [cls.name for cls in self.classes]

    def start(self) -> None:
        if not self.classes:
            return
        self.projector = Projector(self.app, self.store, [cls() for cls in self.classes],
                                   batch_size=self.batch_size, shadow=True)
        self.projector.create_shadow()
        self._thread = threading.Thread(target=self._run, name="sql rebuild", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        store = self.store.clone()
        try:
            self.position = self._build(store)
            log.info("rebuilt %s in SQL up to position %d", "+".join(self.names),
                     self.position)
        except Exception as error:  # any: the Python path takes over
            self.error = error
            log.info("rebuilding %s in SQL failed, in Python instead: %s",
                     "+".join(self.names), error)
        finally:
            store.close()

    def _build(self, store: ViewStore) -> int:
        kinds = sorted({k for b in self.builders.values() for k in b.kinds})
        decimals = sorted({f for b in self.builders.values() for f in b.decimal_fields})
        with store.transaction() as cur:
            # One snapshot: the head and the events read agree.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            store.relax(cur)
            cur.execute(FUNCTIONS)
            head = _head(cur, self.app)
            if kinds:
                _read_events(cur, self.app, kinds, decimals, head)
            for name, builder in self.builders.items():
                if builder.in_place:
                    builder.fill(cur, self.app, store, head)
                    continue
                out = Changes(self.projector_tables(name))
                for table, rows in builder.build(cur).items():
                    for row in rows:
                        out.insert(table, row)
                store.write(cur, out.freeze(), SHADOW)
            return head

    def projector_tables(self, name: str) -> tuple[Table, ...]:
        return next(cls.tables for cls in self.classes if cls.name == name)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def finish(self, on_progress: Progress | None = None) -> Projector | None:
        """Wait for the SQL, then carry its projections on to the head in Python (all of
        the log, if the SQL failed); their shadow tables indexed."""
        if self._thread is None or self.projector is None:
            return None
        self.wait()
        start = 0 if self.error is not None else self.position
        self.projector.resume_shadow({name: start for name in self.names})
        self.projector.catch_up(on_progress=on_progress)
        self.projector.finish_shadow()
        return self.projector


def _events_table(app: Application) -> str:
    recorder = app.recorder
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


def _head(cur: Any, app: Application) -> int:
    cur.execute(f"SELECT coalesce(max(notification_id), 0) FROM {_events_table(app)}")
    return cur.fetchone()[0]


def _read_events(cur: Any, app: Application, kinds: list[str], decimals: list[str],
                 head: int) -> None:
    """The events of ``kinds`` up to ``head``, into ``ev``. Refuses (raises) events stored
    under another class version (their upcasters are Python) and Decimal fields not in
    plain digits."""
    table = _events_table(app)
    cur.execute(
        "CREATE TEMP TABLE ev ON COMMIT DROP AS SELECT notification_id AS pos, "
        "originator_id::text AS oid, substr(topic, strpos(topic, ':') + 1) AS kind, topic, "
        f"convert_from(state, 'UTF8')::jsonb AS s FROM {table} WHERE notification_id <= %s "
        "AND substr(topic, strpos(topic, ':') + 1) = ANY(%s)", (head, kinds))
    cur.execute("SELECT DISTINCT topic, s->>'class_version' FROM ev")
    for topic, version in cur.fetchall():
        if getattr(resolve_topic(topic), "class_version", 1) != int(version or 1):
            raise ValueError(f"{topic} stored as class version {version}: upcasters needed")
    cur.execute("SELECT count(*) FROM ev, unnest(%s::text[]) f WHERE s->f->>'_data_' "
                "!~ %s", (decimals, PLAIN_DECIMALS))
    if cur.fetchone()[0]:
        raise ValueError("a Decimal stored in exponent form")
    # (no index, no ANALYZE: the builders hash-join whole tables; both cost more than they
    # saved, measured)
