"""A request body read no further than a limit: a sender's 1 GB is refused after the limit's
bytes, not held in memory first (``await request.body()`` reads it all)."""

from __future__ import annotations

from fastapi import Request


async def body_at_most(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is past ``limit`` bytes (the rest left unread)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
