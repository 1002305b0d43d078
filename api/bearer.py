"""The access token of an ``Authorization: Bearer …`` header (GraphQL, its answer cache and
``/health`` read it alike)."""

from __future__ import annotations


def bearer_token(header: str | None) -> str | None:
    """The token of a ``Bearer`` header; None for none, another scheme or an empty token."""
    if not isinstance(header, str):
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
