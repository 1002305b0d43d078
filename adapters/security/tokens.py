"""Signed access tokens and random secrets.

An access token is ``at.<payload>.<signature>``: the payload is compact JSON
``{"user", "session", "role", "exp"}`` (ids as hex, ``exp`` in Unix seconds), base64url
without padding; the signature is HMAC-SHA256 over ``at.<payload>`` under a key derived
from the server secret. Stateless to check; revocation is the session's job (the caller
looks the session up). Refresh and mail tokens are :class:`RandomSecrets`, and only their
SHA-256 is ever recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from uuid import UUID

from domain.ports import AccessClaims, TokenSigner

_PREFIX = "at"


class HmacTokenSigner(TokenSigner):
    def __init__(self, key: bytes):
        if len(key) < 32:
            raise ValueError("the signing key needs at least 32 bytes")
        self._key = key

    def sign(self, claims: AccessClaims) -> str:
        payload = {
            "user": claims.user_id.hex,
            "session": claims.session_id.hex,
            "role": claims.role,
            "exp": int(claims.expires_at.timestamp()),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        signed = f"{_PREFIX}.{body}"
        return f"{signed}.{_b64(self._mac(signed))}"

    def read(self, token: str) -> AccessClaims | None:
        prefix, body, signature = _split(token)
        if prefix != _PREFIX:
            return None
        signed = f"{prefix}.{body}"
        try:
            if not hmac.compare_digest(_unb64(signature), self._mac(signed)):
                return None
            payload = json.loads(_unb64(body))
            return AccessClaims(
                user_id=UUID(hex=payload["user"]),
                session_id=UUID(hex=payload["session"]),
                role=str(payload["role"]),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None

    def _mac(self, signed: str) -> bytes:
        return hmac.new(self._key, signed.encode(), hashlib.sha256).digest()


class RandomSecrets:
    """256 bits from the operating system's CSPRNG, URL-safe."""

    def new_secret(self) -> str:
        return secrets.token_urlsafe(32)


def _split(token: str) -> tuple[str, str, str]:
    parts = (token or "").split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
