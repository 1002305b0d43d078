"""How ``tradetape serve`` writes its log, from ``TRADETAPE_LOG_FORMAT``:

- ``text`` (the default): each line as it always was, on stderr.
- ``json``: one JSON object per line on stderr, with ``time`` (UTC, ISO 8601), ``level``,
  ``logger``, ``message``, and ``request_id`` / ``user_id`` when the line belongs to a
  request (and the caller is known by then); a fault's traceback is its ``exception``.

What a line may say is the callers' business and stays as it is: codes, names, paths and
ids, never a document, its variables, a token or a password. This module only adds the
request's id and caller, which it keeps in a context variable: the GraphQL door
(api/graphql/guard.py) opens it for each request, the context notes the caller once
authenticated.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime

from domain.errors import DomainError

FORMATS = ("text", "json")
ENV_NAME = "TRADETAPE_LOG_FORMAT"
# One mutable record per request: resolvers run in tasks of their own (which copy the
# context), so the caller noted in one of them must reach the others and the door.
_request: ContextVar[dict[str, str | None] | None] = ContextVar("tradetape_request",
                                                                 default=None)


def log_format(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    text = env.get(ENV_NAME, "").strip().lower() or "text"
    if text not in FORMATS:
        raise DomainError(f"{ENV_NAME}={text!r}: give one of {', '.join(FORMATS)}",
                          code="INVALID_SETTING", field=ENV_NAME)
    return text


def open_request(request_id: str) -> Token:
    """Log lines written from now on name this request's id (and its caller), until
    ``close_request(token)`` (not a context manager: the GraphQL door opens one for every
    request, and contextlib's generator adds several calls to each)."""
    return _request.set({"request_id": request_id, "user_id": None})


def close_request(token: Token) -> None:
    _request.reset(token)


def note_user(user_id: str) -> None:
    """The caller of the current request, once authenticated."""
    current = _request.get()
    if current is not None:
        current["user_id"] = user_id


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        current = _request.get() or {}
        for key in ("request_id", "user_id"):
            if current.get(key):
                line[key] = current[key]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(fmt: str) -> dict | None:
    """Installs the log format on the root logger; returns the logging configuration
    uvicorn must use (None: uvicorn's lines go through the root logger too)."""
    if fmt != "json":
        return _uvicorn_default()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    return None


def _uvicorn_default() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
