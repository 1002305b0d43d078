"""A projection whose handlers now write other rows into tables of the same shape says so
with its ``revision``: stored rows of an older revision are rebuilt at the next start, like
tables of another shape, and projections that never raised theirs keep their stored views
(their schema hash is the one they had before revisions existed)."""

from __future__ import annotations

from projections.equity import Equity
from projections.pnl import Pnl
from projections.tables import schema_hash


def test_a_revision_changes_the_schema_a_stored_view_is_checked_against():
    assert Equity.revision == 2  # 2: equity_latest (session 15)
    assert Equity.schema() != schema_hash(Equity.tables)  # stored points of revision 0 go
    assert Equity.schema() != schema_hash(Equity.tables, 1)  # and of revision 1
    assert schema_hash(Equity.tables, 1) != schema_hash(Equity.tables, 2)


def test_revision_zero_keeps_the_hash_views_were_stored_with():
    assert Pnl.revision == 0
    # the text hashed before revisions existed: name(ddl)indexes of each table
    import hashlib

    text = "|".join(f"{t.name}({t.ddl()}){t.indexes}" for t in Pnl.tables)
    assert Pnl.schema() == hashlib.sha256(text.encode()).hexdigest()[:16]
