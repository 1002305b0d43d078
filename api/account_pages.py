"""The pages links in mails open: ``/verify-email?token=…`` verifies the address and says so;
``/reset-password?token=…`` shows a form that sets a new password (posted back to the same
address). Plain HTML, no script and no external asset, so they work with no network; the
token is never logged and the pages ask browsers not to cache them nor pass them on in a
Referer header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import TypeVar
from urllib.parse import parse_qs

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from api.bounded_body import body_at_most
from application.runtime import Runtime
from domain.credentials import WeakPasswordError
from domain.errors import DomainError

T = TypeVar("T")
MAX_FORM_BYTES = 8192  # a token and a password: far below this
LOG = logging.getLogger("tradetape.accounts")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
         "color:#111;background:#fff;line-height:1.5}label,input,button{display:block;"
         "font-size:1rem}input{width:100%;padding:.4rem;margin:.3rem 0 1rem}"
         "button{padding:.5rem 1rem}.error{color:#a00000}")
VERIFIED = {
    "verified": "Your email address is verified. You can close this page and log in.",
    "already_verified": "This email address was already verified. Nothing more to do.",
}


def add_account_pages(app: FastAPI, runtime: Runtime) -> None:
    identity = runtime.identity

    @app.get("/verify-email", response_class=HTMLResponse)
    async def verify_email(token: str = "") -> HTMLResponse:
        try:
            outcome = await _command(runtime, lambda: identity.verify_email_outcome(token))
        except DomainError as error:
            return _page("Email not verified", _refusal(error, "verification"), 400)
        return _page("Email verified", f"<p>{VERIFIED[outcome]}</p>")

    @app.get("/reset-password", response_class=HTMLResponse)
    async def reset_form(token: str = "") -> HTMLResponse:
        return _page("Choose a new password", _form(token))

    @app.post("/reset-password", response_class=HTMLResponse)
    async def reset_password(request: Request) -> HTMLResponse:
        body = await body_at_most(request, MAX_FORM_BYTES)
        if body is None:
            return _page("Password not changed", "<p>That form is too large.</p>", 413)
        form = parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        password = (form.get("password") or [""])[0]
        try:
            await _command(runtime, lambda: identity.reset_password(token, password))
        except WeakPasswordError as error:
            problems = "".join(f"<li>{escape(v.message)}</li>" for v in error.violations)
            return _page("Choose a new password", '<p class="error">That password is not '
                         f'acceptable:</p><ul class="error">{problems}</ul>{_form(token)}', 400)
        except DomainError as error:
            return _page("Password not changed", _refusal(error, "reset"), 400)
        return _page("Password changed", "<p>Your password is changed and every session "
                     "was ended. Log in with the new password.</p>")


async def _command(runtime: Runtime, command: Callable[[], T]) -> T:
    if not runtime.accepting_commands:
        raise DomainError("the server is shutting down; try again in a moment",
                          code="SHUTTING_DOWN")

    def run() -> T:
        try:
            return command()
        finally:
            runtime.refresh()

    return await to_thread.run_sync(run)


def _refusal(error: DomainError, kind: str) -> str:
    LOG.warning("account page refused code=%s", error.code)  # never the token
    ask = ("ask for a new verification mail (resendVerification)" if kind == "verification"
           else "ask for a new reset mail (requestPasswordReset)")
    return (f'<p class="error">{escape(error.message)} ({escape(error.code)}).</p>'
            f"<p>The link may have expired or been replaced by a newer one: {ask}.</p>")


def _form(token: str) -> str:
    return ('<form method="post" action="/reset-password">'
            f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'
            '<label for="password">New password (at least 10 characters, with an upper-case '
            'letter, a lower-case letter and a digit)</label>'
            '<input id="password" name="password" type="password" required minlength="10" '
            'maxlength="256" autocomplete="new-password">'
            "<button type=\"submit\">Set the new password</button></form>")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · Tradetape</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)
