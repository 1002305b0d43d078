"""The owner versions' reading of new events: our statement against the library's events
table gives the rows the library's own reading does (a state only where it names an
owner), on SQLite and PostgreSQL; switched off, or on another library version, the
library reads them; and the owners learnt either way are the same."""

from __future__ import annotations

import json

import pytest

from api.graphql import owner_log, owner_versions
from api.graphql.owner_log import OwnerLog
from api.graphql.owner_versions import EVERYONE, RECENT, OwnerVersions
from application import library_seam
from tests.api.conftest import served


def _trade(server) -> None:
    """Users, bots, deals with their orders and fills: every kind of event a live run
    appends, owners named or not."""
    alice, bob = server.user("alice"), server.user("bob")
    server.running_deal(alice)
    server.running_deal(bob, "other")
    server.create_bot(alice, "idle")
    server.step()


def _both_ways(server) -> tuple[list, list, OwnerLog]:
    read = server.client.app.state.graphql_read_side
    trading = server.runtime.trading
    log = read.run_apart(lambda store: OwnerLog(trading, store))
    head = trading.recorder.max_notification_id()
    ours, library = [], []
    for limit in (7, 500):  # pages that end anywhere
        after = 0
        while page := log.read(read, after, limit):
            ours.extend(page)
            after = page[-1][0]
        after = 0
        while page := log.library_page(after, limit):
            library.extend(page)
            after = page[-1][0]
    assert ours and ours[-1][0] == head
    return ours, library, log


def _check(server) -> None:
    _trade(server)
    ours, library, log = _both_ways(server)
    assert log.sql is not None  # the statement of ours was used
    assert ours == library
    named = [row for row in ours if row[4] is not None]
    assert named and len(named) < len(ours) / 2  # most states left unread
    assert all(b'"owner_id"' in row[4] for row in named)


def test_the_statement_reads_the_librarys_rows_on_sqlite(server):
    _check(server)


@pytest.mark.postgres
def test_the_statement_reads_the_librarys_rows_on_postgres(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        _check(server)


def _expected(trading, start: int) -> tuple[dict, dict]:
    """Each owner's last position and latest positions after ``start``, worked out from
    the log read through the library: an aggregate is a User's own, else the owner its
    first event naming one names (the standard library's JSON), else everyone's."""
    found: dict[str, str] = {}

    def owner_of(notification) -> str:
        oid = str(notification.originator_id)
        if oid not in found:
            named = [json.loads(e.state).get("owner_id")
                     for e in trading.recorder.select_events(notification.originator_id)]
            texts = [o for o in named if isinstance(o, str)]
            found[oid] = (oid if ":User." in notification.topic
                          else texts[0] if texts else EVERYONE)
        return found[oid]

    positions: dict[str, list[int]] = {EVERYONE: [start]}
    for n in trading.recorder.select_notifications(start=start, limit=100_000,
                                                   inclusive_of_start=False):
        positions.setdefault(owner_of(n), [0]).append(n.id)
    return ({owner: p[-1] for owner, p in positions.items()},
            {owner: p[-RECENT:] for owner, p in positions.items()})


def _positions_check(server, monkeypatch, page: int) -> None:
    """Learnt a page at a time, owner by owner: each owner's last position and latest
    positions (the versions of their answers) are those of their aggregates' events,
    however their events and others' interleave and wherever a page ends."""
    monkeypatch.setattr(owner_versions, "PAGE", page)
    read = server.client.app.state.graphql_read_side
    trading = server.runtime.trading
    versions = OwnerVersions(trading, read)
    start = versions.snapshot().head  # the log so far counts for everyone
    _trade(server)
    alice = server.accounts["alice"]
    for n in range(4):  # more of her events than a version keeps
        server.create_bot(alice, f"more{n}")
    server.step()
    versions.snapshot()
    touched, recent = _expected(trading, start)
    assert len(recent[alice.user_id]) == RECENT and len(touched) == 3  # and bob, everyone
    assert versions.touched == touched
    assert {owner: list(kept) for owner, kept in versions.recent.items()} == recent


@pytest.mark.parametrize("page", [3, 10_000])
def test_each_owners_positions_are_those_of_their_aggregates_events(server, monkeypatch,
                                                                   page):
    _positions_check(server, monkeypatch, page)


@pytest.mark.postgres
def test_each_owners_positions_are_those_of_their_aggregates_events_on_postgres(
        postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        _positions_check(server, monkeypatch, 3)


@pytest.mark.parametrize("switch", ["off", "all fast paths off", "other version"])
def test_switched_off_the_library_reads_the_log_and_the_owners_are_the_same(
        server, monkeypatch, switch):
    read = server.client.app.state.graphql_read_side
    trading = server.runtime.trading
    ours = OwnerVersions(trading, read)
    ours.snapshot()  # the log so far counts for everyone: what follows is scanned
    theirs = OwnerVersions(trading, read)
    if switch == "off":
        monkeypatch.setenv(owner_log.SWITCH, "0")
    elif switch == "all fast paths off":
        monkeypatch.setenv(library_seam.LIBRARY_PATHS_ENV, "1")
    else:
        monkeypatch.setattr(library_seam, "installed_version", lambda: "9.6.0")
    theirs.snapshot()
    _trade(server)
    ours.snapshot()
    theirs.snapshot()
    assert ours._log.sql is not None and theirs._log.sql is None
    assert len(set(ours.touched)) > 2  # alice, bob, everyone
    assert (ours.touched, ours.owners) == (theirs.touched, theirs.owners)
    assert {k: list(v) for k, v in ours.recent.items()} == {
        k: list(v) for k, v in theirs.recent.items()}


@pytest.mark.postgres
def test_aggregates_older_than_the_api_get_their_owners_in_one_statement(postgres_url,
                                                                         monkeypatch):
    """An api started after the bots opened their deals knows none of their aggregates:
    their owners are read from their first events, many in one statement (one each took
    seconds when a step touched thousands), and are the ones the library's reads find."""
    with served(postgres_url, monkeypatch) as server:
        read = server.client.app.state.graphql_read_side
        trading = server.runtime.trading
        alice, bob = server.user("alice"), server.user("bob")
        alices = server.running_deal(alice)
        bobs = server.running_deal(bob, "other")
        batched, one_by_one = OwnerVersions(trading, read), OwnerVersions(trading, read)
        batched.snapshot()  # what is in the log now counts for everyone: not scanned
        one_by_one.snapshot()
        one_by_one._log.firsts_sql = None  # each aggregate's first event on its own
        alone, real = [], batched._first_owner

        def read_alone(oid):
            alone.append(oid)
            return real(oid)

        batched._first_owner = read_alone
        for _ in range(30):  # until the deals move again: their aggregates are old
            server.step(60)
            if trading.recorder.max_notification_id() > batched.position + 8:
                break
        batched.snapshot()
        one_by_one.snapshot()

        old = {*alices, *bobs}
        assert old & set(batched.owners)  # older aggregates learnt from their first events
        assert alone == []  # all of them in one statement
        assert batched.owners == one_by_one.owners
        assert batched.touched == one_by_one.touched
        assert {batched.owners[i] for i in alices if i in batched.owners} == {alice.user_id}
