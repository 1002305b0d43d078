"""The door of /graphql: a pure ASGI middleware in front of everything else on that path
(the answer cache included) that refuses what no parser should see, before anything parses
it, and makes every refusal a GraphQL answer.

- A body over ``max_body_bytes`` is refused while it arrives (413 ``REQUEST_TOO_LARGE``),
  a document over ``max_document_chars`` too (413 ``DOCUMENT_TOO_LARGE``).
- JSON that does not decode is ``INVALID_JSON``; JSON nested deeper than
  ``max_json_depth`` (``variables`` included, also in a GET's query string) is
  ``NESTING_TOO_DEEP`` (400), so no recursive code behind ever sees it.
- The plain-text refusals of the GraphQL view (405, 400 "No GraphQL query found", ...)
  become ``{"errors": [{"message", "extensions": {"code"}}]}``, and a fault that escapes
  the app is logged once with its traceback and answered 500 ``INTERNAL_SERVER_ERROR``.
- Each request gets an id (the client's ``X-Request-ID`` when it is a plain token, else a
  new one), echoed in the answer's ``X-Request-ID`` and named in the server's log lines.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from api.graphql.response_cache import CHECKED_BODY, replaying
from api.http_limits import RequestLimits
from api.logs import close_request, open_request
from domain.signals import KeyGivenTwice, unique_keys

REQUEST_ID = "tradetape.request_id"  # the scope key the request's id is kept under
log = logging.getLogger("tradetape.graphql")
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATUS_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                 413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, **extensions: Any):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extensions = extensions

    def body(self) -> bytes:
        return error_body(self.message, {"code": self.code, **self.extensions})


def error_body(message: str, extensions: dict[str, Any]) -> bytes:
    return json.dumps({"data": None, "errors": [{"message": message,
                                                 "extensions": extensions}]}).encode()


def json_depth(value: Any) -> int:
    """How deeply ``value`` (decoded JSON) nests, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item
                         if isinstance(child, dict | list))
    return deepest


ACCEPTED_BODIES = 512  # bodies that passed, remembered: a dashboard repeats its requests
MAX_ACCEPTED_BODY = 16 << 10  # larger bodies are checked each time


class GraphQLRequestGuard:
    def __init__(self, app: Any, *, path: str, limits: RequestLimits):
        self.app, self.path, self.limits = app, path, limits
        self.accepted: OrderedDict[bytes, None] = OrderedDict()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope[REQUEST_ID] = request_id
        opened = open_request(request_id)  # not a context manager: one per request, hot
        try:
            await self._serve(scope, receive, _JsonRefusals(send, request_id), request_id)
        finally:
            close_request(opened)

    async def _serve(self, scope: dict, receive: Callable, send: _JsonRefusals,
                     request_id: str) -> None:
        try:
            receive = await self._checked(scope, receive)
        except Refusal as refusal:
            log.warning("graphql client error code=%s operation=- request=%s",
                        refusal.code, request_id)
            await send.json(refusal.status, refusal.body())
            return
        try:
            await self.app(scope, receive, send)
        except Exception:
            if send.started:
                raise
            log.exception("graphql server fault code=INTERNAL_SERVER_ERROR request=%s",
                          request_id)
            await send.json(500, error_body("Unexpected error.",
                                            {"code": "INTERNAL_SERVER_ERROR"}))

    async def _checked(self, scope: dict, receive: Callable) -> Callable:
        """A ``receive`` replaying the checked body (POST), or ``receive`` (GET)."""
        if scope["method"] != "POST":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            self._check_document((query.get("query") or [None])[0])
            if query.get("variables"):
                self._check_json(query["variables"][0].encode("utf-8", "replace"))
            return receive
        body = await self._read_body(scope, receive)
        if b"json" in _header(scope, b"content-type") and not self._seen(body):
            request = self._check_json(body)
            if isinstance(request, dict):
                self._check_document(request.get("query"))
            elif not isinstance(request, list):  # a list is a batch: strawberry answers it
                # strawberry calls .get on whatever the body held: a 500 and a traceback
                raise _not_an_object()
            if len(body) <= MAX_ACCEPTED_BODY:  # the checks are a function of the bytes
                self.accepted[body] = None
                if len(self.accepted) > ACCEPTED_BODIES:
                    self.accepted.popitem(last=False)
        scope[CHECKED_BODY] = body
        return replaying(body, receive)

    def _seen(self, body: bytes) -> bool:
        if body in self.accepted:
            self.accepted.move_to_end(body)
            return True
        return False

    async def _read_body(self, scope: dict, receive: Callable) -> bytes:
        limit = self.limits.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        message = await receive()
        if message["type"] != "http.request":
            return b""
        body = message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body"):
            return body  # the usual request: one message, nothing joined
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def _check_json(self, body: bytes) -> Any:
        limit = self.limits.max_json_depth
        too_deep = Refusal(400, "NESTING_TOO_DEEP", f"the request's JSON nests deeper than "
                           f"{limit} levels", limit=limit)
        try:
            decoded = json.loads(body, object_pairs_hook=unique_keys)
        except RecursionError:
            raise too_deep from None
        except KeyGivenTwice as twice:
            raise Refusal(400, "INVALID_JSON", f"the request body gives the key {twice} "
                          "twice") from None
        except ValueError:
            raise Refusal(400, "INVALID_JSON", "the request body is not valid JSON") from None
        if json_depth(decoded) > limit:
            raise too_deep
        return decoded

    def _check_document(self, document: Any) -> None:
        limit = self.limits.max_document_chars
        if isinstance(document, str) and len(document) > limit:
            raise Refusal(413, "DOCUMENT_TOO_LARGE", f"the GraphQL document is over the "
                          f"limit of {limit} characters", limit=limit)


def _not_an_object() -> Refusal:
    return Refusal(400, "BAD_REQUEST", "the request body must be a JSON object such as "
                   "{\"query\": \"...\"}")


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "REQUEST_TOO_LARGE", f"the request body is over the limit of "
                   f"{limit} bytes", limit=limit)


def _header(scope: dict, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.strip()
    return b""


# A new id is this process's random prefix and a count: unique like a uuid4 without asking
# the system for randomness on every request (os.urandom lets go of the interpreter lock,
# and the event loop must then wait its turn to take it back from busy worker threads).
_PROCESS_PREFIX = uuid.uuid4().hex[:16]
_COUNT = itertools.count(1)


def _request_id(scope: dict) -> str:
    given = _header(scope, b"x-request-id")
    if given:
        text = given.decode("latin-1")
        if _REQUEST_ID_PATTERN.fullmatch(text):
            return text
    return f"{_PROCESS_PREFIX}{next(_COUNT):016x}"


class _JsonRefusals:
    """Passes the app's answer through, with the request id; a refusal that is not a
    GraphQL answer (the view's plain-text 4xx, the framework's ``{"detail": ...}``)
    becomes one, with a code."""

    def __init__(self, send: Callable, request_id: str):
        self.send, self.request_id = send, request_id
        self.started, self.held, self.chunks = False, None, []

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            message = {**message, "headers": [*message.get("headers", ()),
                                              (b"x-request-id", self.request_id.encode())]}
            if message["status"] >= 400:
                self.held = message
                return
        elif message["type"] == "http.response.body" and self.held is not None:
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await self._release()
            return
        await self.send(message)

    async def _release(self) -> None:
        body, status = b"".join(self.chunks), self.held["status"]
        text = body.decode("utf-8", "replace")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("errors"), list):
            await self.send(self.held)
            await self.send({"type": "http.response.body", "body": body})
            return
        if isinstance(answer, dict) and isinstance(answer.get("detail"), str):
            text = answer["detail"]
        await self._send_json(status, error_body(
            text, {"code": _STATUS_CODES.get(status, "BAD_REQUEST" if status < 500
                                             else "INTERNAL_SERVER_ERROR")}))

    async def json(self, status: int, body: bytes) -> None:
        self.started = True
        await self._send_json(status, body)

    async def _send_json(self, status: int, body: bytes) -> None:
        await self.send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", self.request_id.encode())]})
        await self.send({"type": "http.response.body", "body": body})
