"""``register`` over GraphQL tells nothing about whether an email is registered, and names
its limits."""

from __future__ import annotations

from tests.api.conftest import PASSWORD

REGISTER = """mutation($e: String!, $p: String!, $n: String) {
  register(email: $e, password: $p, displayName: $n) {
    __typename
    ... on RegisterPayload { verificationSent user { email displayName role emailVerified
                                                     blocked erased } }
    ... on InputErrors { code errors { code field } }
  }
}"""


def test_a_registered_and_a_new_address_get_the_same_answer(server, capsys):
    server.user("erin")

    taken = server.gql(REGISTER, {"e": "Erin@example.com", "p": PASSWORD, "n": "E"})
    new = server.gql(REGISTER, {"e": "Fay@example.com", "p": PASSWORD, "n": "E"})

    assert taken["register"]["user"].pop("email") == "erin@example.com"
    assert new["register"]["user"].pop("email") == "fay@example.com"
    assert taken == new
    assert taken["register"]["__typename"] == "RegisterPayload"
    mails = capsys.readouterr().err
    assert "--- mail to erin@example.com: Your Tradetape account" in mails


def test_a_display_name_past_its_bound_is_refused_by_name(server):
    refused = server.gql(REGISTER, {"e": "gil@example.com", "p": PASSWORD,
                                    "n": "x" * 10_000})["register"]

    assert refused == {"__typename": "InputErrors", "code": "DISPLAY_NAME_TOO_LONG",
                       "errors": [{"code": "DISPLAY_NAME_TOO_LONG", "field": "displayName"}]}


def test_registrations_from_one_address_are_limited_with_a_named_code(server):
    answers = [server.gql(REGISTER, {"e": f"u{n}@example.com", "p": PASSWORD})["register"]
               for n in range(11)]

    assert [a["__typename"] for a in answers] == ["RegisterPayload"] * 10 + ["InputErrors"]
    assert answers[-1]["code"] == "TOO_MANY_REGISTRATIONS"
