"""Account mails from a real ``tradetape serve``: the console mailer's links point at the
address the server really listens on (or at ``TRADETAPE_PUBLIC_URL``), the verification
link verifies in one GET, and a password reset goes through the mailed link's form."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, ServerProcess, login

pytestmark = pytest.mark.timeout(120)
REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { __typename } }"""
REQUEST_RESET = """mutation($email: String!) { requestPasswordReset(email: $email) {
  __typename ... on MailRequestPayload { accepted } } }"""
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  __typename ... on AuthPayload { user { emailVerified } } ... on AuthError { code } } }"""
NEW_PASSWORD = "Fresh-Start-2026"


def mailed_link(server: ServerProcess, email: str, subject: str) -> str:
    pattern = re.compile(rf"--- mail to {re.escape(email)}: {subject}[^\n]*\nOpen (\S+)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = pattern.findall(server.stderr)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no mail {subject!r} to {email}:\n{server.stderr}")


def test_mailed_links_lead_to_this_server_and_verify_and_reset(launch):
    server = launch(speed=None)
    email = "eve@example.com"
    assert server.gql(REGISTER, {"email": email, "password": PASSWORD})["register"] == {
        "__typename": "RegisterPayload"}

    verify = mailed_link(server, email, "Verify")
    assert verify.startswith(f"http://127.0.0.1:{server.port}/verify-email?token="), verify
    page = httpx.get(verify, timeout=30)  # the link as mailed, host and port included
    assert page.status_code == 200 and "Your email address is verified" in page.text
    answer = server.gql(LOGIN, {"e": email, "p": PASSWORD})["login"]
    assert answer == {"__typename": "AuthPayload", "user": {"emailVerified": True}}

    assert server.gql(REQUEST_RESET, {"email": email})["requestPasswordReset"] == {
        "__typename": "MailRequestPayload", "accepted": True}
    reset = mailed_link(server, email, "Reset")
    assert reset.startswith(f"http://127.0.0.1:{server.port}/reset-password?token="), reset
    form = httpx.get(reset, timeout=30)
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
    done = httpx.post(f"{server.base_url}/reset-password", timeout=30,
                      data={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200 and "Your password is changed" in done.text
    assert server.gql(LOGIN, {"e": email, "p": PASSWORD})["login"]["code"] == \
        "INVALID_CREDENTIALS"
    login(server, email, NEW_PASSWORD)
    logs = re.sub(r"--- mail to .*?\n---\n", "", server.stderr, flags=re.S)  # all but mails
    assert token.partition(".")[2] not in logs and "Fresh-Start" not in logs


def test_links_use_the_public_url_when_one_is_set(launch):
    server = launch(speed=None, env={"TRADETAPE_PUBLIC_URL": "https://trade.example.com/"})
    server.gql(REGISTER, {"email": "fay@example.com", "password": PASSWORD})

    link = mailed_link(server, "fay@example.com", "Verify")

    assert link.startswith("https://trade.example.com/verify-email?token="), link
