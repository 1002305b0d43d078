"""The audit log computed by PostgreSQL in a rebuild (see ``projections/sql_rebuild.py``).

One ``INSERT ... SELECT`` over the events table: the hash chain as a running aggregate in
log order (``pg_temp.chain``: ``sha256(previous || head || stored bytes)``, the bytes exactly
as stored, as :func:`projections.audit.chain` hashes them), and every column of the row as
:func:`projections.audit.audit_values` gives it. The summary is each template of
``projections/summaries.py`` turned into SQL, for the values SQL shows exactly as Python's
``str`` does (text, integers as written, booleans, typed values' text, UUIDs); any other
row is inserted with no summary and finished by Python from its decoded event (with the
hash SQL computed): events without a template, a value SQL cannot show exactly (a float,
a list, an integer in exponent form), text a view stores escaped (``\\u`` escapes, ␀), an
event stored under an older class version (its upcasters are Python), a time not in UTC.
"""

from __future__ import annotations

import logging
from string import Formatter
from typing import Any

from eventsourcing.application import Application
from eventsourcing.utils import resolve_topic

from projections.audit import AUDIT_LOG, GENESIS, audit_values
from projections.facts import FactDecoder
from projections.reader import PG_RECORDED
from projections.sql_rebuild import Builder
from projections.store import SHADOW, ViewStore
from projections.summaries import MAX_CHARS, TEMPLATES

log = logging.getLogger(__name__)

# The chain as an aggregate: run over the events in log order (a window ending at each
# row), it gives each row's hash. (A plpgsql loop costs the same; this needs no function
# that returns rows to join back.)
FUNCTIONS = f"""
CREATE FUNCTION pg_temp.chain_step(previous bytea, message bytea) RETURNS bytea
  LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sha256(previous || message)';
CREATE AGGREGATE pg_temp.chain(bytea) (sfunc = pg_temp.chain_step, stype = bytea,
  initcond = '\\x{GENESIS.hex()}');
CREATE FUNCTION pg_temp.integer_text(stored bytea, field text) RETURNS text
  LANGUAGE sql IMMUTABLE AS
  $$SELECT t FROM (SELECT (convert_from(stored, 'UTF8')::json -> field)::text AS t) x
    WHERE t ~ '^-?[0-9]+$'$$;
"""
# (json, not jsonb, for a number: jsonb keeps 1E+2 as 100, where Python reads a float)


def _literal(text: str) -> str:
    """A SQL string literal, in a statement run with parameters (``%`` doubled)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _uuid_text(data: str) -> str:
    """``reader.uuid_text`` in SQL: 32 characters dashed as a UUID, anything else as is."""
    parts = [f"substr({data}, {start}, {length})"
             for start, length in ((1, 8), (9, 4), (13, 4), (17, 4))]
    dashed = " || '-' || ".join([*parts, f"substr({data}, 21)"])
    return f"CASE WHEN length({data}) = 32 THEN {dashed} ELSE {data} END"


def _shown(field: str) -> str:
    """What a compiled template shows for ``field`` of the state ``s``, in SQL; NULL where
    SQL cannot tell Python's text exactly (Python then renders the row)."""
    v = f"s->{_literal(field)}"
    data, kind = f"{v}->>'_data_'", f"{v}->>'_type_'"
    unwrapped = (f"CASE WHEN {v} ? '_type_' AND {v} ? '_data_' THEN "
                 f"CASE jsonb_typeof({v}->'_data_') "
                 f"WHEN 'string' THEN CASE WHEN {kind} = 'uuid_hex' THEN {_uuid_text(data)} "
                 f"ELSE {data} END "
                 f"WHEN 'null' THEN CASE WHEN {kind} = 'uuid_hex' THEN NULL ELSE '-' END "
                 "END END")
    return (f"CASE jsonb_typeof({v}) WHEN 'string' THEN s->>{_literal(field)} "
            "WHEN 'null' THEN '-' "
            f"WHEN 'boolean' THEN CASE WHEN ({v})::boolean THEN 'True' ELSE 'False' END "
            f"WHEN 'number' THEN pg_temp.integer_text(st, {_literal(field)}) "
            f"WHEN 'object' THEN {unwrapped} "
            f"ELSE CASE WHEN {v} IS NULL THEN '-' END END")


def template_sql(template: str) -> str:
    pieces = []
    for literal, field, _, _ in Formatter().parse(template):
        if literal:
            pieces.append(_literal(literal))
        if field is not None:
            pieces.append(f"({_shown(field)})")
    return f"left({' || '.join(pieces) or _literal('')}, {MAX_CHARS})"


def summary_sql() -> str:
    """The summary of every templated kind (``kind``, state ``s``, stored bytes ``st``);
    NULL for any other."""
    cases = " ".join(f"WHEN {_literal(kind)} THEN {template_sql(template)}"
                     for kind, template in TEMPLATES.items())
    return f"CASE kind {cases} END"


def insert_sql(target: str, events: str, recorded: str) -> str:
    """Every event up to ``%(head)s`` into ``target``, with the summary NULL where Python
    must finish the row (``%(upcast)s``: topics stored under a class version older than
    ``%(versions)s``, the current one)."""
    columns = ", ".join(AUDIT_LOG.column_names)
    message = ("convert_to(e.notification_id || E'\\n' || e.originator_id || E'\\n' || "
               "e.originator_version || E'\\n' || e.topic || E'\\n', 'UTF8') || e.state")
    python = ("strpos(e.topic, ':') = 0 OR position('\\x5c75'::bytea IN e.st) > 0 "
              "OR position('\\xe29080'::bytea IN e.st) > 0 "
              "OR coalesce(jsonb_typeof(s->'actor'), 'null') NOT IN ('string', 'null') "
              "OR coalesce(jsonb_typeof(s->'correlation_id'), 'null') "
              "NOT IN ('string', 'null') OR at IS NULL "
              "OR coalesce(u.version, 1) > coalesce((s->>'class_version')::int, 1)")
    return f"""
INSERT INTO {target} ({columns})
SELECT e.pos, coalesce(e.rec, at), split_part(kind, '.', 1), e.oid, e.ver,
  CASE WHEN strpos(kind, '.') > 0 THEN substr(kind, strpos(kind, '.') + 1) ELSE '' END,
  s->>'actor', s->>'correlation_id',
  CASE WHEN {python} THEN NULL ELSE {summary_sql()} END, encode(e.h, 'hex'), at
FROM (
  SELECT notification_id AS pos, originator_id::text AS oid, originator_version AS ver,
    topic, state AS st, {recorded} AS rec,
    pg_temp.chain({message}) OVER (ORDER BY notification_id ROWS UNBOUNDED PRECEDING) AS h
  FROM {events} e WHERE notification_id <= %(head)s
) e
-- (OFFSET 0: parsed once a row; pulled up, the parse is copied into each use of ``s``)
CROSS JOIN LATERAL (SELECT convert_from(e.st, 'UTF8')::jsonb AS s OFFSET 0) j
CROSS JOIN LATERAL (SELECT substr(e.topic, strpos(e.topic, ':') + 1) AS kind,
  CASE WHEN j.s->'timestamp'->>'_data_' LIKE '%%+00:00'
  THEN j.s->'timestamp'->>'_data_' END AS at) t
LEFT JOIN unnest(%(upcast)s::text[], %(versions)s::int[]) u(topic, version)
  ON u.topic = e.topic
"""


class AuditSql(Builder):
    """The ``audit`` builder: fills the shadow table in place (its rows are one per event:
    fetched into Python and written back, they would cost more than the Python path)."""

    in_place = True

    def fill(self, cur: Any, app: Application, store: ViewStore, head: int) -> None:
        recorder = app.recorder
        events = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        recorded = PG_RECORDED if getattr(recorder, "keeps_recorded_time", False) else "NULL"
        cur.execute(f"SELECT DISTINCT topic FROM {events} WHERE notification_id <= %s",
                    (head,))
        versions = {topic: getattr(resolve_topic(topic), "class_version", 1)
                    for (topic,) in cur.fetchall()}
        upcast = {topic: version for topic, version in versions.items() if version > 1}
        cur.execute(FUNCTIONS)
        target = store.q(AUDIT_LOG.name + SHADOW)
        # No JIT for this statement: compiling its one expression per template cost
        # minutes (measured: 192 s before the first of 5,000 rows), running it seconds.
        cur.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        jit = cur.fetchone()[0]
        cur.execute(insert_sql(target, events, recorded),
                    {"head": head, "upcast": list(upcast), "versions": list(upcast.values())})
        cur.execute("SELECT set_config('jit', %s, true)", (jit,))
        self._finish_in_python(cur, app, store, events, recorded, target)

    @staticmethod
    def _finish_in_python(cur: Any, app: Application, store: ViewStore, events: str,
                          recorded: str, target: str) -> None:
        """The rows SQL left without a summary, made by ``audit_values`` from the decoded
        event and the hash SQL chained."""
        cur.execute(f"SELECT position, hash FROM {target} WHERE summary IS NULL "
                    "ORDER BY position")
        left = cur.fetchall()
        log.info("audit rows finished in Python: %d", len(left))
        decode = FactDecoder(app.mapper)
        for start in range(0, len(left), 5000):
            part = dict(left[start:start + 5000])
            cur.execute(f"SELECT notification_id, originator_id::text, originator_version, "
                        f"topic, state, {recorded} FROM {events} "
                        "WHERE notification_id = ANY(%s) ORDER BY notification_id",
                        (list(part),))
            rows = [AUDIT_LOG.storable(audit_values(decode(tuple(row)),
                                                    bytes.fromhex(part[row[0]])))
                    for row in cur.fetchall()]
            cur.execute(f"DELETE FROM {target} WHERE position = ANY(%s)", (list(part),))
            store.insert_rows(cur, AUDIT_LOG, AUDIT_LOG.name + SHADOW, rows)
