"""What a rebuild's writes cost PostgreSQL, table by table and statement by statement.

    .venv/bin/python scripts/bench_pg_writes.py capture --database URL --out FILE
    .venv/bin/python scripts/bench_pg_writes.py replay --database URL2 --from FILE [--mode M]
    .venv/bin/python scripts/bench_pg_writes.py actor --database URL --into URL2

``capture`` rebuilds every projection of the log at URL (one process) and keeps every
batch's frozen changes as the writer got them (``PostgresViewStore.write``) and the
secondary indexes built at the end. ``replay`` writes them again into fresh tables of
URL2's schema (dropped and made anew) and prints the backend's processor time
(``/proc/PID/schedstat``, nanoseconds) and this thread's:

- ``--mode batches``: each batch as the rebuild writes it (one transaction, pipelined);
- ``--mode split``: each table's deletes, inserts and upserts one statement kind at a time,
  to say which costs what (more round trips than the rebuild makes);

then each secondary index built alone. ``--keys after`` makes the tables the capture only
inserted into without their primary keys and builds them once filled, timed (as a rebuild
does; one that upserts, deletes or patches keeps its key from the start here, where a
rebuild builds it before its first such batch). Replaying the same captured changes is
deterministic: two ways of writing compare on the same rows, without the projections'
Python or the log's reads in the figures.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def backend_ns(conn) -> int:
    """Processor time of the backend serving ``conn``, in nanoseconds."""
    text = Path(f"/proc/{conn.info.backend_pid}/schedstat").read_text()
    return int(text.split()[0])


def capture(args) -> None:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS
    from projections.store import PostgresViewStore, open_view_store

    batches: list[list[tuple]] = []  # by transaction: the writes it held
    last: list = [None]
    indexes: list[tuple[str, str]] = []
    write, index_filled = PostgresViewStore.write, PostgresViewStore.index_filled

    def kept_write(self, cur, changes, suffix=""):
        if cur is not last[0]:  # a new transaction (its cursor)
            last[0] = cur
            batches.append([])
        batches[-1].extend(
            (c.table.name, c.gone, c.inserts, c.upserts, c.patches) for c in changes)
        return write(self, cur, changes, suffix)

    def kept_index(self, tables, keyless=frozenset()):
        indexes.extend((t.name, s) for t, suffix, g in tables
                       for s in self.index_statements(t, "", 1))
        return index_filled(self, tables, keyless)

    PostgresViewStore.write = kept_write
    PostgresViewStore.index_filled = kept_index
    app = open_trading(args.database)
    store = open_view_store(parse_database_url(args.database))
    try:
        rebuild(app, store, list(PROJECTIONS.values()), workers=1, batch_size=10_000)
    finally:
        store.close()
        app.close()
    kept = batches
    Path(args.out).write_bytes(pickle.dumps({"batches": kept, "indexes": indexes}))
    rows = sum(len(g) + len(i) + len(u) for b in kept for _, g, i, u, _ in b)
    print(f"{len(kept)} transactions, {rows:,} rows, {len(indexes)} indexes -> {args.out}")


def tables_by_name() -> dict:
    from projections.registry import PROJECTIONS

    return {t.name: t for cls in PROJECTIONS.values() for t in cls.tables}


def fresh(store, tables: dict, collation: str, keyless: frozenset[str] = frozenset()) -> None:
    from psycopg import sql

    store.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(store.schema)))
    store.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(store.schema)))
    store.TEXT_COLLATION = "" if collation == "default" else f'"{collation}"'
    with store.transaction() as cur:
        for table in tables.values():
            store.create_table(cur, table, "", 1, indexes=False,
                               key=table.name not in keyless)


def replay(args) -> None:
    from application.settings import parse_database_url
    from projections.store import open_view_store
    from projections.tables import Frozen

    data = pickle.loads(Path(args.source).read_bytes())
    tables = tables_by_name()
    store = open_view_store(parse_database_url(args.database))
    conn = store.conn
    # ``--keys after``: the tables only ever inserted into made without their keys, as a
    # rebuild makes them (``Projector.create_shadow``), the keys built with the indexes
    keyless = frozenset()
    if args.keys == "after":
        touched = {name for batch in data["batches"] for name, gone, _, upserts, patches in batch
                   if gone or upserts or patches}
        keyless = frozenset(tables) - touched
    fresh(store, tables, args.collation, keyless)
    spent: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    total_b, total_c = 0, 0.0
    # each transaction: the captured batches it writes one after the other (``--join``)
    batches = [data["batches"][i:i + args.join]
               for i in range(0, len(data["batches"]), args.join)]
    for joined in batches:
        b0, c0 = backend_ns(conn), time.thread_time()
        with store.transaction() as cur:
            store.relax(cur)
            for batch in joined:
                frozen = [Frozen(tables[name], gone, inserts, upserts, patches)
                          for name, gone, inserts, upserts, patches in batch]
                write(store, cur, frozen, args.mode, spent)
        total_b += backend_ns(conn) - b0
        total_c += time.thread_time() - c0
    print(f"writes ({args.mode}, {len(batches)} transactions): backend {total_b / 1e9:.2f} s, "
          f"client thread {total_c:.2f} s")
    for (name, kind), (rows, b, c) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:28s} {kind:7s} {rows:9,} rows  backend {b:6.3f} s "
              f"({b / max(rows, 1) * 1e6:5.1f} us/row)  client {c:6.3f} s")
    if keyless:
        before = backend_ns(conn)
        with store.transaction() as cur:
            for name in sorted(keyless):
                b = backend_ns(conn)
                store.add_key(cur, tables[name], "", 1)
                print(f"  key {name:28s} {(backend_ns(conn) - b) / 1e9:.3f} s")
        print(f"keys built after loading ({len(keyless)} tables): backend "
              f"{(backend_ns(conn) - before) / 1e9:.2f} s")
    if not args.no_indexes:
        build_indexes(store, data["indexes"], args)
    store.close()


def write(store, cur, frozen: list, mode: str, spent: dict) -> None:
    """One captured batch: as the rebuild writes it, or a statement kind at a time."""
    from projections.tables import Frozen

    conn = store.conn
    if mode == "batches":
        store.write(cur, frozen)
        return
    for f in frozen:
        for kind, part in (("delete", f.gone), ("insert", f.inserts), ("upsert", f.upserts),
                           ("patch", f.patches)):
            if not part:
                continue
            one = Frozen(f.table, *[part if k == kind else []
                                    for k in ("delete", "insert", "upsert", "patch")])
            pb, pc = backend_ns(conn), time.thread_time()
            store.write(cur, [one])
            kept = spent[(f.table.name, kind)]
            kept[0] += len(part)
            kept[1] += (backend_ns(conn) - pb) / 1e9
            kept[2] += time.thread_time() - pc


def build_indexes(store, indexes: list, args) -> None:
    """Each secondary index built alone, timed."""
    conn = store.conn
    conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {args.parallel}")
    total = 0
    for name, captured in sorted(indexes):
        head, cols = captured.split(" ON ", 1)[0], captured.split(" (", 1)[1]
        statement = f"{head} ON {store.q(name)} ({cols}"  # into this schema's table
        before = backend_ns(conn)
        conn.execute(statement)
        took = backend_ns(conn) - before
        total += took
        print(f"  index {statement.split(' ON ')[1][len(store.schema) + 3:]:60s} "
              f"{took / 1e9:.3f} s")
    print(f"indexes: backend {total / 1e9:.2f} s (parallel workers not counted)")


ACTOR_INDEXES = {  # (the reads are ``audit_page``'s: for an actor but the engine, saying so)
    "none": None,
    "actor+position": "CREATE INDEX {name} ON {table} (actor, position)",
    "partial": "CREATE INDEX {name} ON {table} (actor, position) WHERE actor <> 'engine'",
}


def actor(args) -> None:
    """The audit log filtered by actor (``audit_page``), with and without an index for it:
    what the index costs (built alone on the filled table, and a ``COPY`` of all the rows in
    batches of ``--batch`` into a table that has it, as a catch-up writes them) and what it
    saves a reader (the newest page and the oldest, for every actor). The audit rows of
    ``--database`` are copied into ``--into``'s schema (dropped and made anew); a bench
    log's events are all the engine's, so one row in 500 is given to one of seven users
    and one in 10,000 to an operator (the rare actors of a real log)."""
    from psycopg import sql

    from application.settings import parse_database_url
    from projections.audit import AUDIT_LOG
    from projections.audit_queries import audit_page
    from projections.queries import encode_cursor
    from projections.store import open_view_store

    source = open_view_store(parse_database_url(args.database))
    rows = source.conn.execute(f"SELECT {', '.join(AUDIT_LOG.column_names)} FROM "
                               f"{source.q(AUDIT_LOG.name)} ORDER BY position").fetchall()
    source.close()
    at = AUDIT_LOG.column_names.index("actor")
    rows = [r[:at] + (("operator:bench",) if i % 10_000 == 5_000 else (f"user-{i % 7}",)
                      if i % 500 == 250 else (r[at],)) + r[at + 1:]
            for i, r in enumerate(rows)]
    store = open_view_store(parse_database_url(args.into))
    conn = store.conn
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(store.schema)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(store.schema)))
    table, copy = store.q(AUDIT_LOG.name), store.q("bench_audit_copy")
    with store.transaction() as cur:
        store.create_table(cur, AUDIT_LOG, "", 1, indexes=False)
        store._copy(cur, AUDIT_LOG, table, rows)
        for text in store.index_statements(AUDIT_LOG, "", 1):
            if "actor" not in text:  # (the variants below are the actor's)
                cur.execute(text)
    actors = conn.execute(f"SELECT actor, count(*), min(position) FROM {table} "
                          "GROUP BY actor ORDER BY 2").fetchall()
    print(f"{len(rows):,} audit rows; actors: "
          + ", ".join(f"{a}: {n:,}" for a, n, _ in actors))
    conn.execute("SET max_parallel_maintenance_workers = 0")
    picked = [actors[0], actors[len(actors) // 2], actors[-1]]  # rarest, middling, engine
    for _ in range(args.rounds):
        for variant, ddl in ACTOR_INDEXES.items():
            conn.execute(f"DROP INDEX IF EXISTS {store.q('ix_bench_actor')}")
            built = 0
            if ddl:
                before = backend_ns(conn)
                conn.execute(ddl.format(name=store.bare("ix_bench_actor"), table=table))
                built = backend_ns(conn) - before
            conn.execute(f"ANALYZE {table}")
            reads = []
            for who, _, first in picked:
                for after in (None, encode_cursor(first + 1)):  # the newest page, the oldest
                    before = backend_ns(conn)
                    for _ in range(args.reads):
                        audit_page(store, owner=None, actor=who, after=after)
                    reads.append((who, after is None,
                                  (backend_ns(conn) - before) / args.reads / 1e6))
            conn.execute(f"DROP TABLE IF EXISTS {copy}")
            conn.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")  # its indexes
            if ddl:
                conn.execute(ddl.format(name=store.bare("ix_bench_actor_copy"), table=copy))
            before = backend_ns(conn)
            for i in range(0, len(rows), args.batch):
                with store.transaction() as cur:
                    store.relax(cur)
                    store._copy(cur, AUDIT_LOG, copy, rows[i:i + args.batch])
            copied = backend_ns(conn) - before
            conn.execute(f"DROP TABLE {copy}")
            print(f"{variant:15s} build {built / 1e9:.3f} s, catch-up COPY {copied / 1e9:.2f} s; "
                  "reads (backend ms a page): " + ", ".join(
                      f"{who} {'newest' if newest else 'oldest'} {ms:.2f}"
                      for who, newest, ms in reads), flush=True)
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(store.schema)))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture", help="rebuild and keep every batch's changes")
    c.add_argument("--database", required=True, metavar="URL")
    c.add_argument("--out", required=True, metavar="FILE")
    r = sub.add_parser("replay", help="write captured changes again, timed")
    r.add_argument("--database", required=True, metavar="URL",
                   help="its schema is dropped and made anew")
    r.add_argument("--from", dest="source", required=True, metavar="FILE")
    r.add_argument("--mode", choices=("batches", "split"), default="batches")
    r.add_argument("--no-indexes", action="store_true")
    r.add_argument("--join", type=int, default=1, metavar="N",
                   help="N captured transactions written as one")
    r.add_argument("--collation", choices=("C", "default"), default="C",
                   help="of the text columns (the store's is C)")
    r.add_argument("--keys", choices=("kept", "after"), default="kept",
                   help="after: tables only inserted into get their primary key once filled")
    r.add_argument("--maintenance-work-mem", default="64MB")
    r.add_argument("--parallel", type=int, default=0,
                   help="max_parallel_maintenance_workers for the index builds")
    a = sub.add_parser("actor", help="the audit log by actor: an index's cost and gain")
    a.add_argument("--database", required=True, metavar="URL",
                   help="whose schema's audit_log is copied (read only)")
    a.add_argument("--into", required=True, metavar="URL",
                   help="its schema is dropped, made anew, and dropped at the end")
    a.add_argument("--rounds", type=int, default=2, metavar="N")
    a.add_argument("--reads", type=int, default=20, metavar="N", help="pages per figure")
    a.add_argument("--batch", type=int, default=10_000, metavar="N")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TRADETAPE_KEY_DIR", "/work/keys")
    {"capture": capture, "replay": replay, "actor": actor}[args.command](args)


if __name__ == "__main__":
    main()
