"""How much a single GraphQL request may ask of the server, checked before anything parses
it, from ``TRADETAPE_*`` environment variables:

- ``TRADETAPE_MAX_BODY_BYTES``: the body of a POST to /graphql (default 65536)
- ``TRADETAPE_MAX_DOCUMENT_CHARS``: the GraphQL document's length (default 32768)
- ``TRADETAPE_MAX_DOCUMENT_TOKENS``: its lexical tokens (default 2000; the introspection
  query GraphiQL sends has fewer than 200)
- ``TRADETAPE_MAX_JSON_DEPTH``: how deeply the JSON of a request (its ``variables``
  included) may nest (default 32)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from domain.errors import DomainError

ENV_NAMES = {"max_body_bytes": "TRADETAPE_MAX_BODY_BYTES",
             "max_document_chars": "TRADETAPE_MAX_DOCUMENT_CHARS",
             "max_document_tokens": "TRADETAPE_MAX_DOCUMENT_TOKENS",
             "max_json_depth": "TRADETAPE_MAX_JSON_DEPTH"}
# How deeply brackets ({, [, ( ) may nest in a document: a selection ten fields deep with
# input objects in its arguments stays well below.
MAX_DOCUMENT_NESTING = 32
_CEILING = 1 << 30


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 64 * 1024
    max_document_chars: int = 32 * 1024
    max_document_tokens: int = 2000
    max_json_depth: int = 32

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        env = os.environ if environ is None else environ
        limits = cls()
        for field in fields(cls):
            text = env.get(ENV_NAMES[field.name], "").strip()
            if text:
                limits = replace(limits, **{field.name: _positive(text,
                                                                  ENV_NAMES[field.name])})
        return limits


def _positive(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _CEILING:
        raise DomainError(f"{name}={text!r}: give a whole number from 1 to {_CEILING}",
                          code="INVALID_SETTING", field=name)
    return int(text)
