"""The account mails over GraphQL and the pages their links open: the verification page
verifies and says so, resendVerification and requestPasswordReset answer alike whatever the
address, a reset token works once and expires, changePassword keeps only the caller's
session, and no token ever reaches an event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import PASSWORD

REGISTER = """mutation($e: String!, $p: String!) {
  register(email: $e, password: $p) { __typename } }"""
RESEND = """mutation($e: String!) { resendVerification(email: $e) {
  __typename ... on MailRequestPayload { accepted } ... on InputErrors { code } } }"""
REQUEST_RESET = """mutation($e: String!) { requestPasswordReset(email: $e) {
  __typename ... on MailRequestPayload { accepted } ... on InputErrors { code } } }"""
RESET = """mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) {
  __typename ... on PasswordPayload { changed } ... on AuthError { code }
  ... on InputErrors { code errors { field } } } }"""
CHANGE = """mutation($c: String!, $p: String!) {
  changePassword(currentPassword: $c, newPassword: $p) {
    __typename ... on PasswordPayload { changed } ... on AuthError { code }
    ... on InputErrors { code errors { field } } } }"""
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  __typename ... on AuthPayload { accessToken } ... on AuthError { code } } }"""
ME = "{ me { email emailVerified } }"
NEW_PASSWORD = "Brand-New-Pass-42"
MAIL = re.compile(r"--- mail to (\S+): ([^\n]*)\n(.*?)\n---\n", re.S)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str

    @property
    def link(self) -> str:
        return re.search(r"Open (\S+)", self.body).group(1)

    @property
    def token(self) -> str:
        return re.search(r"or use this token: (\S+)", self.body).group(1)


def mails(capsys) -> list[Mail]:
    """The mails the console mailer printed since the last call."""
    return [Mail(*m) for m in MAIL.findall(capsys.readouterr().err)]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def register(server, capsys, email: str) -> Mail:
    assert server.gql(REGISTER, {"e": email, "p": PASSWORD})["register"]["__typename"] == \
        "RegisterPayload"
    [mail] = mails(capsys)
    return mail


def raw_events(server) -> bytes:
    recorder = server.runtime.trading.recorder
    return b"\n".join(bytes(n.state) for n in recorder.select_notifications(start=None,
                                                                            limit=100_000))


def test_the_verification_link_opens_a_page_that_verifies_and_says_so(server, capsys):
    mail = register(server, capsys, "vera@example.com")
    assert mail.link.startswith("http://127.0.0.1:8000/verify-email?token=")

    page = server.client.get(path_of(mail.link))
    again = server.client.get(path_of(mail.link))

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Your email address is verified" in page.text
    assert again.status_code == 200 and "already verified" in again.text
    assert "<script" not in page.text and "http" not in page.text  # no external asset
    tokens = server.runtime.identity.login("vera@example.com", PASSWORD)
    assert server.gql(ME, {}, tokens.access_token)["me"]["emailVerified"] is True
    verified = [n for n in server.runtime.trading.recorder.select_notifications(
        start=None, limit=100_000) if n.topic.endswith("EmailVerified")]
    # Recorded as the user (the actor is the user's id), not as the system.
    assert len(verified) == 1 and str(tokens.user.id).encode() in bytes(verified[0].state)


@pytest.mark.parametrize("token, says", [
    ("not-a-token", "VERIFICATION_TOKEN_INVALID"),
    ("0123456789abcdef0123456789abcdef.guess", "VERIFICATION_TOKEN_INVALID"),
])
def test_a_bad_verification_link_answers_400_and_names_why(server, capsys, token, says):
    register(server, capsys, "val@example.com")

    page = server.client.get("/verify-email", params={"token": token})

    assert page.status_code == 400 and says in page.text


def test_an_expired_verification_link_answers_400_and_verifies_nothing(server, capsys):
    mail = register(server, capsys, "old@example.com")
    server.clock.current += timedelta(hours=24, seconds=1)

    page = server.client.get(path_of(mail.link))

    assert page.status_code == 400 and "VERIFICATION_TOKEN_EXPIRED" in page.text
    assert server.runtime.identity.find_user("old@example.com").email_verified is False


def test_resend_verification_answers_alike_and_mails_only_an_unverified_account(
        server, capsys):
    first = register(server, capsys, "una@example.com")
    server.user("vic")  # verified
    mails(capsys)

    answers = [server.gql(RESEND, {"e": e}) for e in
               ("una@example.com", "vic@example.com", "nobody@example.com")]

    assert answers[0] == answers[1] == answers[2] == {
        "resendVerification": {"__typename": "MailRequestPayload", "accepted": True}}
    [mail] = mails(capsys)
    assert mail.to == "una@example.com" and mail.token != first.token
    assert server.client.get(path_of(first.link)).status_code == 400  # replaced
    assert server.client.get(path_of(mail.link)).status_code == 200


def test_requests_for_a_mail_are_limited_per_address_with_a_named_code(server, capsys):
    for query, name in ((RESEND, "resendVerification"),
                        (REQUEST_RESET, "requestPasswordReset")):
        answers = [server.gql(query, {"e": "ann@example.com"})[name]["__typename"]
                   for _ in range(4)]
        refused = server.gql(query, {"e": "ann@example.com"})[name]
        assert answers == ["MailRequestPayload"] * 3 + ["InputErrors"], name
        assert refused == {"__typename": "InputErrors", "code": "TOO_MANY_MAIL_REQUESTS"}


def test_a_reset_token_works_once_ends_every_session_and_never_reaches_an_event(
        server, capsys):
    alice = server.user("alice")
    mails(capsys)
    unknown = server.gql(REQUEST_RESET, {"e": "nobody@example.com"})
    known = server.gql(REQUEST_RESET, {"e": "Alice@example.com"})
    assert unknown == known == {"requestPasswordReset": {
        "__typename": "MailRequestPayload", "accepted": True}}
    [mail] = mails(capsys)
    assert mail.link.startswith("http://127.0.0.1:8000/reset-password?token=")

    weak = server.gql(RESET, {"t": mail.token, "p": "weak"})["resetPassword"]
    done = server.gql(RESET, {"t": mail.token, "p": NEW_PASSWORD})["resetPassword"]
    twice = server.gql(RESET, {"t": mail.token, "p": "Other-Pass-123"})["resetPassword"]

    assert weak["__typename"] == "InputErrors" and weak["errors"][0]["field"] == "newPassword"
    assert done == {"__typename": "PasswordPayload", "changed": True}
    assert twice == {"__typename": "AuthError", "code": "RESET_TOKEN_INVALID"}
    assert server.post(ME, {}, alice.token)["errors"][0]["extensions"]["code"] == \
        "SESSION_REVOKED"
    assert login(server, "alice@example.com", NEW_PASSWORD) == "AuthPayload"
    assert login(server, "alice@example.com", PASSWORD) == "AuthError"
    secret = mail.token.partition(".")[2]
    assert secret.encode() not in raw_events(server)


def test_a_reset_token_expires_after_24_hours(server, capsys):
    server.user("bob")
    mails(capsys)
    server.gql(REQUEST_RESET, {"e": "bob@example.com"})
    [mail] = mails(capsys)
    server.clock.current += timedelta(hours=24, seconds=1)

    late = server.gql(RESET, {"t": mail.token, "p": NEW_PASSWORD})["resetPassword"]

    assert late == {"__typename": "AuthError", "code": "RESET_TOKEN_EXPIRED"}
    assert login(server, "bob@example.com", PASSWORD) == "AuthPayload"


def test_the_reset_page_shows_a_form_that_sets_the_password(server, capsys):
    server.user("cy")
    mails(capsys)
    server.gql(REQUEST_RESET, {"e": "cy@example.com"})
    [mail] = mails(capsys)

    form = server.client.get(path_of(mail.link))
    weak = server.client.post("/reset-password", data={"token": mail.token, "password": "x"})
    done = server.client.post("/reset-password",
                              data={"token": mail.token, "password": NEW_PASSWORD})
    again = server.client.post("/reset-password",
                               data={"token": mail.token, "password": NEW_PASSWORD})

    assert form.status_code == 200 and 'method="post"' in form.text
    assert f'value="{mail.token}"' in form.text and form.headers["cache-control"] == "no-store"
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    assert done.status_code == 200 and "Your password is changed" in done.text
    assert again.status_code == 400 and "RESET_TOKEN_INVALID" in again.text
    assert login(server, "cy@example.com", NEW_PASSWORD) == "AuthPayload"


def test_change_password_keeps_the_callers_session_and_ends_the_others(server):
    dan = server.user("dan")
    other = server.runtime.identity.login("dan@example.com", PASSWORD)

    wrong = server.gql(CHANGE, {"c": "Not-The-Pass-1", "p": NEW_PASSWORD}, dan.token)
    weak = server.gql(CHANGE, {"c": PASSWORD, "p": "short"}, dan.token)
    done = server.gql(CHANGE, {"c": PASSWORD, "p": NEW_PASSWORD}, dan.token)

    assert wrong["changePassword"] == {"__typename": "AuthError",
                                       "code": "INVALID_CREDENTIALS"}
    assert weak["changePassword"]["errors"][0]["field"] == "newPassword"
    assert done["changePassword"] == {"__typename": "PasswordPayload", "changed": True}
    assert server.gql(ME, {}, dan.token)["me"]["email"] == "dan@example.com"
    assert server.post(ME, {}, other.access_token)["errors"][0]["extensions"]["code"] == \
        "SESSION_REVOKED"
    assert login(server, "dan@example.com", NEW_PASSWORD) == "AuthPayload"
    assert b"Brand-New-Pass" not in raw_events(server)


def test_guessing_the_current_password_is_limited_like_logins(server):
    """A stolen access token is no way around the login limits: wrong current passwords
    count as failed logins of that account from that address."""
    eve = server.user("eve")
    guesses = [server.gql(CHANGE, {"c": f"Guess-Number-{i}", "p": NEW_PASSWORD}, eve.token)
               ["changePassword"]["code"] for i in range(5)]
    right = server.gql(CHANGE, {"c": PASSWORD, "p": NEW_PASSWORD}, eve.token)

    assert guesses == ["INVALID_CREDENTIALS"] * 5
    assert right["changePassword"]["code"] == "TOO_MANY_ATTEMPTS"
    assert server.gql(LOGIN, {"e": "eve@example.com", "p": PASSWORD})["login"]["code"] == \
        "TOO_MANY_ATTEMPTS"  # the same address logging in is held back too


def test_change_password_needs_a_login(server):
    errors = server.post(CHANGE, {"c": PASSWORD, "p": NEW_PASSWORD})["errors"]

    assert errors[0]["extensions"]["code"] == "AUTHENTICATION_REQUIRED"


def login(server, email: str, password: str) -> str:
    return server.gql(LOGIN, {"e": email, "p": password})["login"]["__typename"]
