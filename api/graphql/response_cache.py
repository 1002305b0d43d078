"""A cache of whole GraphQL answers to read-only queries, exact because it is keyed by what
they were read from.

Every answer of a cacheable query is a function of the caller, the document, its variables,
the event log and the read models, and nothing else (no resolver of those fields reads a
clock). So an answer is stored with the *read version* it was computed at: the log's head
and each projection's position and generation. It is served again, without running any
resolver, only to the same caller asking the same thing while the read version is still the
same; any appended event, projection batch or rebuild makes every older answer a miss.

The caller is still authenticated on every request: the access token's signature and expiry
are checked each time, and the user's state (blocked, logged out) is re-read whenever the
log has moved since it was last read.

Only queries whose root fields are all in :data:`CACHEABLE_ROOTS` are considered; mutations,
subscriptions, ``me``, ``systemStatus``, audit and history pass straight through, as does
anything malformed, nested too deeply or over ``max_tokens`` (strawberry then says what is
wrong). Answers with ``errors`` are not stored. A document not seen before is parsed in a
worker thread, and only for a validly signed token: the event loop never waits for it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from graphql import FieldNode, OperationDefinitionNode, OperationType, parse
from graphql.error import GraphQLError

CACHEABLE_ROOTS = frozenset({"bots", "bot", "deals", "deal", "portfolio", "pnlSeries",
                             "__typename"})
MAX_BODY = 1 << 20  # larger answers are not kept
MAX_BYTES = 64 << 20  # all kept answers together; the least recently used go first
Version = tuple[Any, ...]


@dataclass(frozen=True)
class _Answer:
    version: Version
    body: bytes


@dataclass(frozen=True)
class _Caller:
    head: Any
    key: tuple[Any, ...]


class _Lru(OrderedDict):
    """At most ``size`` entries and ``max_weight`` in all (``weigh(value)`` each)."""

    def __init__(self, size: int, max_weight: int = 0,
                 weigh: Callable[[Any], int] = lambda _: 0):
        super().__init__()
        self.size, self.max_weight, self.weigh, self.weight = size, max_weight, weigh, 0

    def get_fresh(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        if key in self:
            self.weight -= self.weigh(self.pop(key))
        self[key] = value
        self.weight += self.weigh(value)
        while len(self) > self.size or (self.max_weight and self.weight > self.max_weight):
            _, dropped = self.popitem(last=False)
            self.weight -= self.weigh(dropped)


class GraphQLResponseCache:
    """Pure ASGI middleware for ``POST {path}``.

    ``read_version(scope)``: the current read version of what a caller of that ``scope``
    (``scope_of(identity)``: an owner, None for everything) may see; cheap, and run on a
    worker thread, as is ``authenticate``: the event loop never waits for the database.
    ``token_expiry(token)``: the expiry of a validly signed access token, else None.
    ``authenticate(token)``: the caller's identity key (user, role, ...), raising if the
    token is refused; called when the log has moved since this token was last checked.
    ``now()``: the clock the token expiries are compared with.
    """

    def __init__(self, app: Any, *, path: str, read_version: Callable[[Any], Version],
                 token_expiry: Callable[[str], Any], authenticate: Callable[[str], tuple],
                 now: Callable[[], Any], scope_of: Callable[[tuple], Any] = lambda _: None,
                 entries: int = 4096, max_tokens: int = 2000):
        self.app, self.path, self.max_tokens = app, path, max_tokens
        self.read_version, self.token_expiry, self.scope_of = read_version, token_expiry, scope_of
        self.authenticate, self.now = authenticate, now
        self.answers: _Lru = _Lru(entries, MAX_BYTES, lambda answer: len(answer.body))
        self.callers: _Lru = _Lru(entries)
        self.documents: _Lru = _Lru(512)
        self.hits = self.misses = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"].rstrip("/") != self.path):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        replay = replaying(body, receive)
        key = await self._key(scope, body)
        if key is None:
            await self.app(scope, replay, send)
            return
        try:
            found = await self._caller(key[0])
        except Exception:  # a store that cannot answer: the app reports it as it would
            found = None
        if found is None:
            await self.app(scope, replay, send)
            return
        caller, version = found
        full_key = (caller.key, *key[1:])
        answer = self.answers.get_fresh(full_key)
        if answer is not None and answer.version == version:
            self.hits += 1
            await _send_json(send, answer.body)
            return
        self.misses += 1
        captured = _Capture(send)
        await self.app(scope, replay, captured)
        if captured.cacheable():
            self.answers.put(full_key, _Answer(version, captured.body))

    async def _key(self, scope: dict, body: bytes) -> tuple[Any, ...] | None:
        """(token, document, variables, operation name) of a cacheable request, else None
        (also for JSON too deep for the decoder: the app behind refuses it)."""
        token = _bearer(scope)
        if token is None or len(body) > MAX_BODY:
            return None
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(request, dict):
            return None
        document, variables = request.get("query"), request.get("variables") or {}
        operation = request.get("operationName")
        if not (isinstance(document, str) and isinstance(variables, dict)
                and (operation is None or isinstance(operation, str))):
            return None
        if not await self._cacheable(token, document, operation):
            return None
        try:
            return (token, document, json.dumps(variables, sort_keys=True), operation)
        except (ValueError, RecursionError):
            return None

    async def _cacheable(self, token: str, document: str, operation: str | None) -> bool:
        found = self.documents.get_fresh((document, operation))
        if found is None:
            if self.token_expiry(token) is None:
                return False  # no parsing for a forged token
            found = await to_thread.run_sync(_read_only, document, operation,
                                             self.max_tokens)
            self.documents.put((document, operation), found)
        return found

    async def _caller(self, token: str) -> tuple[_Caller, Version] | None:
        """Who holds ``token`` and the read version of what they may see; the caller is
        re-read whenever that version's first part (the log position of their last event)
        moved. None: let strawberry answer (missing, forged, expired, revoked or blocked)."""
        expiry = self.token_expiry(token)
        if expiry is None or self.now() >= expiry:
            return None
        known = self.callers.get_fresh(token)
        if known is None:
            known = await self._authenticate(token, None)
            if known is None:
                return None
        version = await to_thread.run_sync(self.read_version, self.scope_of(known.key))
        if known.head != version[0]:
            known = await self._authenticate(token, version[0])
            if known is None:
                return None
        return known, version

    async def _authenticate(self, token: str, head: Any) -> _Caller | None:
        try:
            identity = await to_thread.run_sync(self.authenticate, token)
        except Exception:  # any refusal: strawberry gives the proper error
            return None
        known = _Caller(head, identity)
        self.callers.put(token, known)
        return known


def _read_only(document: str, operation: str | None, max_tokens: int | None = None) -> bool:
    try:
        parsed = parse(document, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation is not None:
        operations = [d for d in operations if d.name and d.name.value == operation]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    selections = operations[0].selection_set.selections
    return all(isinstance(s, FieldNode) and s.name.value in CACHEABLE_ROOTS
               for s in selections)


def _bearer(scope: dict) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


async def _read_body(receive: Callable) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Callable) -> Callable:
    """A ``receive`` that hands the already-read body to the app behind, then listens to
    the connection as before (a streamed answer waits for the client's disconnect)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Callable, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _Capture:
    """Passes the app's response through while keeping a copy of a 200 JSON body."""

    def __init__(self, send: Callable):
        self.send, self.status, self.chunks = send, 0, []
        self.json = False

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.json = any(n == b"content-type" and v.startswith(b"application/json")
                            for n, v in message.get("headers", ()))
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self.send(message)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def cacheable(self) -> bool:
        if self.status != 200 or not self.json:
            return False
        body = self.body
        if len(body) > MAX_BODY:
            return False
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        return isinstance(answer, dict) and "errors" not in answer and "data" in answer
