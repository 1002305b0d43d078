"""Cross-origin requests, for a front end served from another origin than the API:
``TRADETAPE_CORS_ORIGINS`` lists the origins allowed (comma-separated, each
``scheme://host[:port]`` exactly as a browser sends it in ``Origin``; ``*`` allows any).
None by default: a page of any other origin gets no CORS headers, so the browser keeps
the answer from it.

Credentials are bearer tokens in ``Authorization`` (never cookies), so an allowed origin
may send that header and reads ``X-Request-ID`` back; no cookie is ever allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from domain.errors import DomainError

ENV_NAME = "TRADETAPE_CORS_ORIGINS"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def cors_origins(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if environ is None else environ
    origins = tuple(o.strip().rstrip("/") for o in env.get(ENV_NAME, "").split(",")
                    if o.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise DomainError(f"{ENV_NAME}: {origin!r} is not an origin (give "
                              f"scheme://host[:port], comma-separated, or *)",
                              code="INVALID_SETTING", field=ENV_NAME)
    return origins


def allow_origins(app, origins: tuple[str, ...]):
    """``app`` behind the CORS middleware (put outermost: a preflight is answered before
    anything else looks at it, and every answer, a cached one too, gets the same headers)
    when ``origins`` names any; else ``app`` itself."""
    if not origins:
        return app
    from fastapi.middleware.cors import CORSMiddleware

    return CORSMiddleware(app, allow_origins=list(origins), allow_credentials=False,
                          allow_methods=["GET", "POST", "OPTIONS"],
                          allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                          expose_headers=["X-Request-ID"], max_age=PREFLIGHT_MAX_AGE)
