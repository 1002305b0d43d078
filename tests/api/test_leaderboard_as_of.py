"""The leaderboard as it stood at a past moment (the dashboard's as-of slider): the log up to
then replayed through the leaderboard projection. Replaying is costly, so asOf needs a
logged-in caller even though the leaderboard itself is public."""

from __future__ import annotations

import time

from tests.api.test_queries import traded
from tests.projection_stubs import recorded_now

BOARD = "query($at: DateTime) { leaderboard(asOf: $at) { rank botId name dealsClosed } }"
LIST = "mutation($id: ID!) { setLeaderboardListing(id: $id, listed: true) { __typename } }"


def test_the_leaderboard_as_of_a_moment_before_a_bot_was_listed_and_after(server):
    alice, bot_id = traded(server)
    before = recorded_now()  # the bot has traded but is not listed yet
    time.sleep(0.01)
    server.gql(LIST, {"id": bot_id}, alice.token)
    after = recorded_now()
    now = server.gql(BOARD, {}, alice.token)["leaderboard"]
    assert [(e["rank"], e["botId"]) for e in now] == [(1, bot_id)]
    assert server.gql(BOARD, {"at": before}, alice.token)["leaderboard"] == []
    then = server.gql(BOARD, {"at": after}, alice.token)["leaderboard"]
    assert then == now  # nothing happened since: the replay agrees with the live view


def test_as_of_needs_a_logged_in_caller_and_a_past_moment(server):
    alice, _ = traded(server, minutes=30)
    anonymous = server.post(BOARD, {"at": recorded_now()})
    assert anonymous["errors"][0]["extensions"]["code"] == "AUTHENTICATION_REQUIRED"
    assert server.gql(BOARD, {})["leaderboard"] == []  # without asOf: public as before
    future = server.post(BOARD, {"at": "2999-01-01T00:00:00Z"}, alice.token)
    assert future["errors"][0]["extensions"]["code"] == "AS_OF_IN_FUTURE"
