"""Sending mail: to the console by default, through SMTP when ``TRADETAPE_SMTP_URL`` is set.

``TRADETAPE_SMTP_URL``: ``smtp://[USER[:PASSWORD]@]HOST[:PORT]`` (STARTTLS when the server
offers it), or ``smtps://...`` (TLS from the start, port 465 by default).
``TRADETAPE_MAIL_FROM`` sets the sender (default ``tradetape@localhost``).
"""

from __future__ import annotations

import os
import smtplib
import sys
from collections.abc import Mapping
from email.message import EmailMessage
from typing import TextIO
from urllib.parse import unquote, urlparse

from domain.errors import DomainError
from domain.ports import Mailer

SMTP_URL_ENV = "TRADETAPE_SMTP_URL"
MAIL_FROM_ENV = "TRADETAPE_MAIL_FROM"
DEFAULT_SENDER = "tradetape@localhost"


class ConsoleMailer(Mailer):
    """Prints each mail (on stderr unless told), so a local user can follow the link."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream

    def send(self, to: str, subject: str, body: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(f"--- mail to {to}: {subject}\n{body}\n---\n")
        stream.flush()


class SmtpMailer(Mailer):
    def __init__(self, url: str, sender: str = DEFAULT_SENDER, timeout: float = 10.0):
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise DomainError(f"{SMTP_URL_ENV} must look like smtp://user:pass@host:587",
                              code="INVALID_SMTP_URL")
        self._tls = parsed.scheme == "smtps"
        self._host = parsed.hostname
        self._port = parsed.port or (465 if self._tls else 25)
        self._user = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password or "")
        self._sender, self._timeout = sender, timeout

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._sender, to, subject
        message.set_content(body)
        smtp_class = smtplib.SMTP_SSL if self._tls else smtplib.SMTP
        try:
            with smtp_class(self._host, self._port, timeout=self._timeout) as smtp:
                if not self._tls:
                    smtp.ehlo()
                    if smtp.has_extn("starttls"):
                        smtp.starttls()
                        smtp.ehlo()
                if self._user:
                    smtp.login(self._user, self._password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise DomainError(f"could not send mail via {self._host}:{self._port}: {error}",
                              code="MAIL_NOT_SENT") from None


def mailer_from_environ(environ: Mapping[str, str] | None = None) -> Mailer:
    environ = os.environ if environ is None else environ
    url = environ.get(SMTP_URL_ENV)
    if url:
        return SmtpMailer(url, environ.get(MAIL_FROM_ENV) or DEFAULT_SENDER)
    return ConsoleMailer()
