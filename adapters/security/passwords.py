"""Passwords hashed with bcrypt (the salt comes from bcrypt's own ``gensalt``).

bcrypt reads at most 72 bytes, and bcrypt >= 5 refuses longer input; so the password is
first reduced to base64(SHA-256(password)) (44 bytes, no NUL), which keeps every character
of a long passphrase significant.
"""

from __future__ import annotations

import base64
import hashlib

import bcrypt

from domain.credentials import NewPassword
from domain.ports import PasswordHasher

DEFAULT_ROUNDS = 12  # about 0.2 s per hash on this machine; tests use the minimum, 4
# bcrypt of b"decoy" at DEFAULT_ROUNDS, made once: hashing it at every start cost the
# server 0.2-0.3 s before it could answer (other rounds hash their decoy at start).
_DEFAULT_DECOY = b"$2b$12$pmiXH1W//k3AeLrWq1yNwOhg2fjEAkvVbpUXvmRtOTI6UvhLlne6y"


class BcryptPasswordHasher(PasswordHasher):
    def __init__(self, rounds: int = DEFAULT_ROUNDS):
        self._rounds = rounds
        # Compared against when the email is unknown, so that answer takes as long as a
        # wrong password does (no user enumeration by timing).
        self._decoy = (_DEFAULT_DECOY if rounds == DEFAULT_ROUNDS
                       else bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds)))

    def hash(self, password: NewPassword) -> str:
        if not isinstance(password, NewPassword):
            raise TypeError("only a NewPassword (one that passed the rules) is hashed")
        return bcrypt.hashpw(_prehash(password.text), bcrypt.gensalt(self._rounds)).decode()

    def verify(self, password: str, hashed: str | None) -> bool:
        if hashed is None:
            bcrypt.checkpw(_prehash(password), self._decoy)
            return False
        try:
            return bcrypt.checkpw(_prehash(password), hashed.encode())
        except ValueError:  # not a bcrypt hash at all
            return False


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode()).digest())
