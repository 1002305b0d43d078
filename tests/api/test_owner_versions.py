"""A user's read version while the projections are behind: it moves when a projection
applies one of their events (or one that counts for everyone), not when it applies other
users' events, so their cached answers stay cached meanwhile and are never stale."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.graphql.owner_versions import EVERYONE, OwnerVersions, Snapshot


def _log(server):
    """Alice's and Bob's events interleaved after the versions' first look at the log:
    the versions, alice's user id and each later event's (position, owner)."""
    read = server.client.app.state.graphql_read_side
    versions = OwnerVersions(server.runtime.trading, read)
    alice, bob = server.user("alice"), server.user("bob")
    first = versions.snapshot().head  # the log so far counts for everyone
    for n in range(3):
        server.create_bot(alice, f"a{n}")
        server.create_bot(bob, f"b{n}")
    snapshot = versions.snapshot()
    page = server.runtime.trading.recorder.select_notifications(
        start=first, limit=1000, inclusive_of_start=False)
    owners = [(n.id, versions.owners.get(str(n.originator_id), EVERYONE)) for n in page]
    return versions, alice.user_id, snapshot, first, owners


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_version_moves_only_with_the_owners_events_applied(server, data):
    if not hasattr(server, "log"):
        server.log = _log(server)
    versions, alice, snapshot, first, owners = server.log
    names = [(name, generation) for name, _, generation in snapshot.tracking]
    positions = st.integers(first, snapshot.head)

    def applied(tracking) -> tuple:
        """What alice's views show: per projection, her (or everyone's) events applied."""
        return tuple(frozenset(p for p, owner in owners if owner in (alice, EVERYONE)
                               and p <= position) for _, position, _ in tracking)

    ends = st.sampled_from(data.draw(st.lists(positions, min_size=1, max_size=3)))

    def tracking():  # few positions, so that two differ often yet apply the same
        return tuple((name, data.draw(ends), generation) for name, generation in names)

    one, other = tracking(), tracking()
    same = (versions.version_of(Snapshot(snapshot.head, one), alice)
            == versions.version_of(Snapshot(snapshot.head, other), alice))
    assert same == (applied(one) == applied(other))


def test_other_users_events_applied_leave_a_version_behind_as_it_was(server):
    versions, alice, snapshot, _, owners = _log(server)
    mine = [p for p, owner in owners if owner == alice]
    bobs = [p for p, owner in owners if owner not in (alice, EVERYONE)]
    assert mine and bobs and max(bobs) > max(mine)
    names = [(name, generation) for name, _, generation in snapshot.tracking]

    def version(position: int) -> tuple:  # every projection at ``position``
        return versions.version_of(Snapshot(snapshot.head, tuple(
            (name, position, generation) for name, generation in names)), alice)

    between = [p for p in bobs if p < max(mine)]  # bob's, applied before her last
    assert between
    assert version(between[-1] - 1) == version(between[-1])  # his: no change
    assert version(max(mine) - 1) != version(max(mine))  # hers: a new version
    assert version(max(mine)) == version(max(bobs))  # then his again: none
