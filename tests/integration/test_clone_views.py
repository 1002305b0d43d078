"""Seeding a benchmark log with its read models copied user by user (scripts/clone_seed.py,
scripts/clone_views.py) gives exactly the read models a full rebuild of that log gives:
every projection's tables, row for row, the audit chain included (a rebuild refuses to
swap in an audit log whose chain disagrees with the one there), and every projection at
the log's head."""

from __future__ import annotations

import sys
from itertools import zip_longest
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def tables(url: str) -> dict[str, list[tuple]]:
    from application.settings import _connect_kwargs, parse_database_url
    from projections.registry import PROJECTIONS

    env = parse_database_url(url).env
    schema = env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        return {t.name: sorted(conn.execute(
                    f'SELECT {", ".join(t.column_names)} FROM "{schema}"."{t.name}"'
                ).fetchall(), key=repr)
                for cls in PROJECTIONS.values() for t in cls.tables}


def positions(url: str) -> tuple[int, set[int]]:
    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    schema = env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        head = conn.execute(f'SELECT max(notification_id) FROM "{schema}".trading_events'
                            ).fetchone()[0]
        tracked = {p for (p,) in conn.execute(
            f'SELECT position FROM "{schema}".projection_tracking').fetchall()}
    return head, tracked


def test_copied_read_models_equal_a_full_rebuild(postgres_url):
    from clone_seed import ensure_schema, rebuild_projections, seed

    ensure_schema(postgres_url, fresh=True)
    written = seed(postgres_url, bots=30 * 10, events=30 * 150)
    head, tracked = positions(postgres_url)
    assert head == written and tracked == {head}
    copied = tables(postgres_url)
    assert sum(map(len, copied.values())) > 30 * 150  # every user's rows, not the first's
    rebuild_projections(postgres_url)
    rebuilt = tables(postgres_url)
    differ = {name: next((a, b) for a, b in zip_longest(copied[name], rows) if a != b)
              for name, rows in rebuilt.items() if copied[name] != rows}
    assert differ == {}
    assert positions(postgres_url) == (head, {head})
