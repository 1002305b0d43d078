"""Benchmark: the audit log built in Python or by PostgreSQL (``projections/audit_sql.py``),
in processor time, over a log ``scripts/bench_projections.py`` made.

    .venv/bin/python scripts/bench_audit_sql.py --database URL [--rounds 2]

Each round rebuilds every projection in one process twice, alternating: the audit log in
SQL, then in Python (``paper_book`` in SQL both times, as by default), and prints this
process's processor time and the wall time of each. Then the SQL statement alone, in a
transaction rolled back: the processor time of its database backend (read from /proc: the
database must run on this machine) and whether its rows equal the live audit log's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (SQL first: the statement alone is then compared with a live audit log Python built)
MODES = {"sql": {"paper_book", "audit"}, "python": {"paper_book"}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Processor time of a rebuild with the audit log in Python or in SQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", required=True, metavar="URL",
                        help="a PostgreSQL store holding a log (bench_projections.py makes "
                             "one) and its views")
    parser.add_argument("--rounds", type=int, default=2, metavar="N",
                        help="rounds of the two rebuilds, alternating")
    return parser.parse_args(argv)


def backend_seconds(pid: int) -> float | None:
    """Processor time (user + system) of a local process; None when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_rebuild(url: str, mode: str) -> str:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections import sql_rebuild
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store

    app = open_trading(url)
    store = open_view_store(parse_database_url(url))
    sql_rebuild.ENABLED, sql_rebuild.BUILT = True, MODES[mode]
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        head = rebuild(app, store, list(PROJECTIONS.values()), workers=1)
        return (f"audit in {mode:6}: {time.process_time() - cpu:6.2f} s of this process's "
                f"processor time, {time.perf_counter() - wall:6.2f} s wall, {head:,} events")
    finally:
        sql_rebuild.ENABLED, sql_rebuild.BUILT = None, None
        store.close()
        app.close()


class _RolledBack(Exception):
    pass


def statement_alone(url: str) -> str:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.audit import AUDIT_LOG
    from projections.audit_sql import AuditSql
    from projections.sql_rebuild import _head
    from projections.store import SHADOW, open_view_store

    app = open_trading(url)
    store = open_view_store(parse_database_url(url))
    try:
        (pid,) = store.query("SELECT pg_backend_pid()")[0]
        live, built = store.q(AUDIT_LOG.name), store.q(AUDIT_LOG.name + SHADOW)
        columns = ", ".join(AUDIT_LOG.column_names)
        try:
            with store.transaction() as cur:
                store.create_table(cur, AUDIT_LOG, SHADOW, 0, indexes=False)
                before = backend_seconds(pid)
                AuditSql().fill(cur, app, store, _head(cur, app))
                after = backend_seconds(pid)
                cur.execute(f"SELECT count(*) FROM ((SELECT {columns} FROM {live} EXCEPT "
                            f"SELECT {columns} FROM {built}) UNION ALL (SELECT {columns} "
                            f"FROM {built} EXCEPT SELECT {columns} FROM {live})) x")
                differing = cur.fetchone()[0]
                cur.execute(f"SELECT count(*) FROM {built}")
                rows = cur.fetchone()[0]
                raise _RolledBack  # nothing of it kept
        except _RolledBack:
            pass
    finally:
        store.close()
        app.close()
    spent = "n/a" if before is None or after is None else f"{after - before:.2f} s"
    return (f"the SQL statement alone: {spent} of its backend's processor time, {rows:,} "
            f"rows, {differing:,} differing from the live audit log")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for n in range(args.rounds):
        for mode in MODES:
            print(f"round {n + 1}, {one_rebuild(args.database, mode)}", flush=True)
    print(statement_alone(args.database), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
