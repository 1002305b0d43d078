"""A cache of whole GraphQL answers to read-only queries, exact because it is keyed by what
they were read from.

Every answer of a cacheable query is a function of the caller, the document, its variables,
the event log and the read models, and nothing else (no resolver of those fields reads a
clock). So an answer is stored with the *read version* it was computed at: the log's head
and each projection's position and generation. It is served again, without running any
resolver, only to the same caller asking the same thing while the read version is still the
same; any appended event, projection batch or rebuild makes every older answer a miss.
An answer that marked open deals at the market's price also keeps the version of each
price it read; when only those moved, it is marked again at the new prices without running
any resolver (``api/graphql/remarking.py``), or made again where that cannot be done.

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

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from api.bearer import bearer_token
from api.graphql.fresh_reads import FreshReads
from api.graphql.remarking import FIGURES, Figure, MarkReads, remark, remarkable
from application.market_tape import MARKS_READ

CACHEABLE_ROOTS = frozenset({"bots", "bot", "deals", "deal", "portfolio", "pnlSeries",
                             "__typename"})
MAX_BODY = 1 << 20  # larger answers are not kept
MAX_REMEMBERED_BODY = 16 << 10  # larger requests are decoded each time
MAX_BYTES = 64 << 20  # all kept answers together; the least recently used go first
Version = tuple[Any, ...]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # requests that write nothing
# The scope key under which the door (api/graphql/guard.py) leaves a POST's checked body,
# its ``receive`` then replaying it: the cache reads it from there instead of again.
CHECKED_BODY = "tradetape.checked_body"


@dataclass(frozen=True)
class _Answer:
    version: Version
    body: bytes
    marks: tuple[tuple[str, int], ...] = ()  # (pair, its mark's version) read
    figures: tuple[Figure, ...] | None = None  # how to mark it again (None: it cannot be)


@dataclass(frozen=True)
class _Caller:
    head: Any
    key: tuple[Any, ...]
    scope: Any = None  # ``scope_of(key)``, worked out once per authentication


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

    ``snapshot()``: reads what the read versions are made of (blocking; on a worker thread,
    shared by the requests that arrived before it began: :class:`FreshReads`);
    ``snapshot_on_loop()``: the same awaited on the event loop, tried first (None: not
    there; by default the ``snapshot_on_loop`` of the object whose method ``snapshot`` is;
    its ``kept_snapshot`` and ``stamp`` say when the last read still holds, nothing having
    been written since: ``OwnerVersions``, and its read side's ``written`` is told when
    this process answered a request that may have written).
    ``version_of(snapshot, scope)``: the read version of what a caller of that ``scope``
    (``scope_of(identity)``: an owner, None for everything) may see; cheap, on the loop.
    ``mark_version(pair)``: the version of the market's mark of ``pair``: an answer that
    read a mark (``MARKS_READ``) is kept only while the marks it read are the latest.
    ``token_expiry(token)``: the expiry of a validly signed access token, else None.
    ``authenticate(token)``: the caller's identity key (user, role, ...), raising if the
    token is refused; called when the log has moved since this token was last checked.
    ``now()``: the clock the token expiries are compared with.
    """

    def __init__(self, app: Any, *, path: str, snapshot: Callable[[], Any],
                 version_of: Callable[[Any, Any], Version],
                 token_expiry: Callable[[str], Any], authenticate: Callable[[str], tuple],
                 now: Callable[[], Any], scope_of: Callable[[tuple], Any] = lambda _: None,
                 mark_version: Callable[[str], int] = lambda _: 0,
                 entries: int = 4096, max_tokens: int = 2000,
                 snapshot_on_loop: Callable[[], Awaitable[Any]] | None = None):
        self.app, self.path, self.max_tokens = app, path, max_tokens
        if snapshot_on_loop is None:  # the owner versions' own (api/server.py hands over
            # their ``snapshot``): the statement awaited on the loop where it can be
            snapshot_on_loop = getattr(getattr(snapshot, "__self__", None),
                                       "snapshot_on_loop", None)
        owner = getattr(snapshot, "__self__", None)
        self.snapshots = FreshReads(snapshot, snapshot_on_loop,
                                    getattr(owner, "kept_snapshot", None),
                                    getattr(owner, "stamp", None))
        # this process may have written: the kept read version is read again
        self.written = getattr(getattr(owner, "read", None), "written", None)
        self.version_of = version_of
        self.token_expiry, self.scope_of, self.mark_version = (token_expiry, scope_of,
                                                               mark_version)
        self.authenticate, self.now = authenticate, now
        self.answers: _Lru = _Lru(entries, MAX_BYTES, lambda answer: len(answer.body))
        self.callers: _Lru = _Lru(entries)
        self.documents: _Lru = _Lru(512)
        self.requests: _Lru = _Lru(512)  # body: (document, variables, operation) or None
        self.expiries: _Lru = _Lru(entries)  # token: its expiry (a pure function of it)
        self.making: dict[tuple[Any, ...], asyncio.Future] = {}  # answers being made
        self.hits = self.misses = self.remarked = 0  # remarked: hits marked again

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"].rstrip("/") != self.path):
            await self._passed(scope, receive, send)
            return
        body = scope.get(CHECKED_BODY)
        if body is None:
            body = await _read_body(receive)
            replay = replaying(body, receive)
        else:  # the guard's ``receive`` replays it already
            replay = receive
        key = await self._key(scope, body)
        if key is None:
            await self._passed(scope, replay, send)
            return
        try:
            found = await self._caller(key[0])
        except Exception:  # a store that cannot answer: the app reports it as it would
            found = None
        if found is None:
            await self._passed(scope, replay, send)
            return
        caller, version = found
        full_key = (caller.key, *key[1:])
        kept = self._kept(full_key, version)
        making = self.making.get((full_key, version))
        if kept is None and making is not None:  # being made: wait for it (a new price
            await asyncio.shield(making)  # meanwhile: it is re-marked, not made again)
            kept = self._kept(full_key, version)
        if kept is not None:
            self.hits += 1
            await _send_json(send, kept)
            return
        self.misses += 1
        await self._make(scope, replay, send, full_key, version)

    async def _passed(self, scope: dict, receive: Callable, send: Callable) -> None:
        """The app answers a request that is not a cached query's (a mutation, a webhook):
        what it wrote is then read in the next read version even before its NOTIFY
        arrives (``OwnerVersions.kept_snapshot``)."""
        try:
            await self.app(scope, receive, send)
        finally:
            if self.written is not None and scope.get("method") not in SAFE_METHODS:
                self.written()

    async def _make(self, scope: dict, replay: Callable, send: Callable,
                    full_key: tuple[Any, ...], version: Version) -> None:
        """Runs the app, keeping its answer (with the marks it read) when it may be kept;
        requests for the same answer meanwhile wait for it rather than make it again."""
        made = asyncio.get_running_loop().create_future()
        self.making.setdefault((full_key, version), made)
        captured = _Capture(send)
        marks, figures = MarkReads(), []
        reading, noting = MARKS_READ.set(marks), FIGURES.set(figures)
        try:
            await self.app(scope, replay, captured)
            if captured.cacheable():
                self.answers.put(full_key, _Answer(version, captured.body, tuple(marks),
                                                   remarkable(figures, marks.counts)))
        finally:
            MARKS_READ.reset(reading)
            FIGURES.reset(noting)
            if self.making.get((full_key, version)) is made:
                del self.making[(full_key, version)]
            made.set_result(None)  # the answer, if kept, is in ``answers``

    def _kept(self, full_key: tuple[Any, ...], version: Version) -> bytes | None:
        """The kept answer if it was made at ``version`` (re-marked if a price it read
        moved since), else None."""
        answer = self.answers.get_fresh(full_key)
        if answer is None or answer.version != version:
            return None
        if not self._marks_hold(answer):
            answer = self._remarked(full_key, answer)
        return None if answer is None else answer.body

    def _marks_hold(self, answer: _Answer) -> bool:
        return all(self.mark_version(pair) == seen for pair, seen in answer.marks)

    def _remarked(self, full_key: tuple[Any, ...], answer: _Answer) -> _Answer | None:
        """``answer`` marked at the current prices (kept in its place), or None when it
        cannot be: only its marks moved, so nothing else in it changed."""
        if answer.figures is None:
            return None
        marks = MarkReads()
        reading = MARKS_READ.set(marks)
        try:
            body = remark(answer.body, answer.figures)
        finally:
            MARKS_READ.reset(reading)
        if body is None or len(body) > MAX_BODY:
            return None
        fresh = _Answer(answer.version, body, tuple(marks), answer.figures)
        self.answers.put(full_key, fresh)
        self.remarked += 1
        return fresh

    async def _key(self, scope: dict, body: bytes) -> tuple[Any, ...] | None:
        """(token, document, variables, operation name) of a cacheable request, else None
        (also for JSON too deep for the decoder: the app behind refuses it)."""
        token = _bearer(scope)
        if token is None or len(body) > MAX_BODY:
            return None
        request = self.requests.get_fresh(body)
        if request is None:
            request = _request_of(body)
            if len(body) <= MAX_REMEMBERED_BODY:
                self.requests.put(body, request)
        if not request:
            return None
        document, variables, operation = request
        if not await self._cacheable(token, document, operation):
            return None
        return (token, document, variables, operation)

    async def _cacheable(self, token: str, document: str, operation: str | None) -> bool:
        found = self.documents.get_fresh((document, operation))
        if found is None:
            if self._expiry(token) is None:
                return False  # no parsing for a forged token
            found = await to_thread.run_sync(_read_only, document, operation,
                                             self.max_tokens)
            self.documents.put((document, operation), found)
        return found

    def _expiry(self, token: str) -> Any:
        """The token's expiry, its signature checked once (the same bytes, the same
        answer); None for a token that is not validly signed."""
        found = self.expiries.get_fresh(token)
        if found is None:
            found = (self.token_expiry(token),)
            self.expiries.put(token, found)
        return found[0]

    async def _caller(self, token: str) -> tuple[_Caller, Version] | None:
        """Who holds ``token`` and the read version of what they may see; the caller is
        re-read whenever that version's first part (the log position of their last event)
        moved. None: let strawberry answer (missing, forged, expired, revoked or blocked)."""
        expiry = self._expiry(token)
        if expiry is None or self.now() >= expiry:
            return None
        known = self.callers.get_fresh(token)
        if known is None:
            known = await self._authenticate(token, None)
            if known is None:
                return None
        version = self.version_of(await self.snapshots.get(), known.scope)
        if known.head != version[0]:
            known = await self._authenticate(token, version[0])
            if known is None:
                return None
        return known, version

    async def _authenticate(self, token: str, head: Any) -> _Caller | None:
        try:
            identity = await to_thread.run_sync(self.authenticate, token)
        except Exception:  # any refusal: strawberry gives the proper error
            self.callers.pop(token, None)
            return None
        known = _Caller(head, identity, self.scope_of(identity))
        self.callers.put(token, known)
        return known


def _request_of(body: bytes) -> tuple[str, str, str | None] | None:
    """(document, variables as canonical JSON, operation name), or None for a body that is
    not one GraphQL request."""
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
    try:
        return (document, json.dumps(variables, sort_keys=True), operation)
    except (ValueError, RecursionError):
        return None


def _read_only(document: str, operation: str | None, max_tokens: int | None = None) -> bool:
    # graphql-core loads with the schema, after the server answers /health (a cached
    # answer needs the schema built anyway): not when this middleware is added.
    from graphql import FieldNode, OperationDefinitionNode, OperationType, parse
    from graphql.error import GraphQLError

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
            return bearer_token(value.decode("latin-1"))
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
