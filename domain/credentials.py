"""Rules for what a person types to get in: an email address and a password, and how the
tokens we hand out are remembered (as SHA-256 digests, never as themselves).

Pure functions and values: no clock, no random source, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from domain.errors import DomainError
from domain.text import DISPLAY_NAME_MAX, checked_text, text_problem

PASSWORD_MIN_LENGTH = 10
# Far above any passphrase; keeps hashing cost bounded for a hostile megabyte "password".
PASSWORD_MAX_LENGTH = 256
EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit
DISPLAY_NAME_MAX_LENGTH = DISPLAY_NAME_MAX


class WeakPasswordError(DomainError):
    """The password breaks one or more rules; ``violations`` names each with its own code."""

    code = "WEAK_PASSWORD"

    def __init__(self, violations: list[DomainError]):
        self.violations = violations
        super().__init__("; ".join(str(v) for v in violations), field="password")


class InvalidEmailError(DomainError):
    code = "INVALID_EMAIL"


def password_violations(password: str) -> list[DomainError]:
    """Every rule ``password`` breaks, in a stable order; empty when it is acceptable."""
    problem = text_problem(password, "password")  # a lone surrogate cannot even be hashed
    rules = (
        (len(password) >= PASSWORD_MIN_LENGTH, "PASSWORD_TOO_SHORT",
         f"must be at least {PASSWORD_MIN_LENGTH} characters"),
        (len(password) <= PASSWORD_MAX_LENGTH, "PASSWORD_TOO_LONG",
         f"must be at most {PASSWORD_MAX_LENGTH} characters"),
        (any(c.isupper() for c in password), "PASSWORD_NEEDS_UPPER",
         "needs an upper-case letter"),
        (any(c.islower() for c in password), "PASSWORD_NEEDS_LOWER",
         "needs a lower-case letter"),
        (any(c.isdigit() for c in password), "PASSWORD_NEEDS_DIGIT", "needs a digit"),
    )
    return [*([problem] if problem else []),
            *(DomainError(message, code=code, field="password") for ok, code, message in rules
              if not ok)]


@dataclass(frozen=True)
class NewPassword:
    """A password that passed every rule: the only kind a ``PasswordHasher`` accepts to hash.
    Its text never shows in a repr or a log."""

    text: str = field(repr=False)

    def __post_init__(self) -> None:
        violations = password_violations(self.text)
        if violations:
            raise WeakPasswordError(violations)


def normalize_email(email: str) -> str:
    """The canonical form of an address (trimmed, lower-case), or ``INVALID_EMAIL``.

    Deliberately lenient (no RFC 5322 parser): the verification mail is the real check."""
    problem = text_problem(email or "", "email")
    if problem is not None:
        raise InvalidEmailError(problem.message, code=problem.code, field="email")
    address = (email or "").strip().lower()
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(address) > EMAIL_MAX_LENGTH
        or any(c.isspace() for c in address)
    ):
        raise InvalidEmailError(f"{email!r} is not an email address", field="email")
    return address


def token_digest(token: str) -> str:
    """How a token is remembered: its SHA-256, hex. Tokens carry 256 random bits, so a plain
    digest is enough (no salt or slow hash needed, unlike passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def digests_match(a: str | None, b: str | None) -> bool:
    """Constant-time comparison, so timing tells nothing about how much of a digest matched."""
    return a is not None and b is not None and hmac.compare_digest(a, b)


def display_name_of(text: str | None) -> str | None:
    """A display name as kept: trimmed, None when blank, ``DISPLAY_NAME_TOO_LONG`` past
    ``DISPLAY_NAME_MAX_LENGTH`` characters; the text rule's codes for characters no name
    may hold (``domain.text``)."""
    name = checked_text(text, "display_name").strip() if text is not None else ""
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise DomainError(f"a display name has at most {DISPLAY_NAME_MAX_LENGTH} characters",
                          code="DISPLAY_NAME_TOO_LONG", field="display_name")
    return name or None
