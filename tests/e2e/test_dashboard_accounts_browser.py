"""The dashboard's account pages in a real Chromium against ``tradetape serve``: a new user
registers through the form, is reminded to verify, verifies with the mailed token, then
forgets their password and sets a new one with the mailed reset token; every page's
controls are named and the browser reaches only 127.0.0.1. Screenshots in var/screenshots/."""

from __future__ import annotations

import re
import time

from tests.e2e.conftest import graphql_faults, only_loopback
from tests.e2e.test_dashboard_browser import WAIT, shot

EMAIL, PASSWORD, NEW_PASSWORD = "newcomer@example.com", "Correct-Horse-9", "Brand-New-Pass-42"


def reset_token(server, email: str, timeout: float = 10.0) -> str:
    """The token of the latest password reset the console mailer printed for ``email``."""
    pattern = re.compile(rf"--- mail to {re.escape(email)}: Reset[^\n]*\n(?:[^\n]*\n)*?"
                         r"or use this token: (\S+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.findall(server.stderr)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no reset mail to {email}")


def log_in(page, password: str) -> None:
    # The link only changes the URL's hash; the login form replaces the previous page's
    # (which has its own Email and Password fields) a moment later. Filling before that
    # fills the old form, and the new one is submitted empty.
    page.get_by_role("button", name="Log in").wait_for(timeout=WAIT)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for(timeout=WAIT)


def test_register_verify_and_reset_a_password_in_the_browser(launch, chromium):
    server = launch(speed=None)
    page = chromium.new_page(viewport={"width": 1000, "height": 800})
    elsewhere = only_loopback(page)
    wrong = graphql_faults(page)
    page.goto(f"{server.base_url}/#/register", wait_until="load")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Display name (optional)").fill("Newcomer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.get_by_text("Registered.").wait_for(timeout=WAIT)
    shot(page, "register")

    page.get_by_role("link", name="Back to log in").click()
    log_in(page, PASSWORD)
    page.locator('[data-testid="verify-reminder"]').wait_for()  # unverified: paper only
    assert "PAPER" in page.locator('[data-testid="mode-banner"]').inner_text()
    page.goto(f"{server.base_url}/#/verify?token={server.mail_token(EMAIL)}")
    page.get_by_text(f"{EMAIL} is verified").wait_for(timeout=WAIT)
    shot(page, "verify")
    page.get_by_role("link", name="Go to the dashboard").click()
    page.get_by_role("heading", name="Overview").wait_for()
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="verify-reminder"]').count() == 0

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("heading", name="Reset your password").wait_for(timeout=WAIT)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Mail me a link").click()
    page.get_by_text("a reset link is on its way").wait_for(timeout=WAIT)
    page.goto(f"{server.base_url}/#/reset?token={reset_token(server, EMAIL)}")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_text("Password changed").wait_for(timeout=WAIT)
    shot(page, "reset")
    page.get_by_role("link", name="Back to log in").click()
    log_in(page, NEW_PASSWORD)
    assert wrong == []  # every document the pages sent was valid and within the limits
    assert elsewhere == []
