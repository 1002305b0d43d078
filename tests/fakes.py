"""Fakes of the ports, for tests: deterministic, observable, in memory."""

from __future__ import annotations

from dataclasses import dataclass

from domain.ports import Mailer


class CountingSecrets:
    """Predictable, distinct secrets: ``secret-1``, ``secret-2``, ..."""

    def __init__(self, prefix: str = "secret") -> None:
        self._prefix, self._count = prefix, 0

    def new_secret(self) -> str:
        self._count += 1
        return f"{self._prefix}-{self._count}"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str

    @property
    def token(self) -> str:
        """The token the mail carries (the line ``or use this token: TOKEN``)."""
        for line in self.body.splitlines():
            if line.startswith("or use this token: "):
                return line.removeprefix("or use this token: ")
        raise AssertionError(f"no token in {self.body!r}")


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append(Mail(to, subject, body))

    def last_to(self, to: str) -> Mail:
        return [mail for mail in self.sent if mail.to == to][-1]
