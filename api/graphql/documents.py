"""Parsing and validation of GraphQL documents, bounded and off the event loop.

A document's length, token count and bracket nesting are checked by the lexer before the
parser builds anything (``DOCUMENT_TOO_LARGE``, ``TOO_MANY_TOKENS``, ``NESTING_TOO_DEEP``);
its fragments are checked before any validation rule walks them (see
:func:`api.graphql.limits.fragment_errors`). A document seen for the first time is parsed
and validated in a worker thread of a small pool of its own, so a large legal document
costs its own request some time but never stalls the event loop (``/health``, the other
requests); a document seen before is answered from the caches on the loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from graphql import (
    DocumentNode,
    GraphQLError,
    Lexer,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    TokenKind,
    parse,
)
from strawberry.extensions import SchemaExtension

from api.graphql.limits import fragment_errors
from api.http_limits import MAX_DOCUMENT_NESTING, RequestLimits

T = TypeVar("T")
WORKER_THREADS = 2  # the cores a burst of new documents may take from everything else
CACHED_DOCUMENTS = 512
_OPENING = frozenset({TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L})
_CLOSING = frozenset({TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R})
_limiters: weakref.WeakKeyDictionary[Any, CapacityLimiter] = weakref.WeakKeyDictionary()


class _Cache:
    """A thread-safe LRU map (documents by text, validation errors by text and rules)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_documents = _Cache(CACHED_DOCUMENTS)
_validations = _Cache(CACHED_DOCUMENTS)


def stand_in(operation_name: str | None) -> DocumentNode:
    """An empty query (named as the request asks) in place of a document that did not
    parse, whose error is then answered like a validation error on every transport: a
    parsing hook's exception would escape strawberry's subscription path, which logs a
    traceback and completes the subscription without the error."""
    name = NameNode(value=operation_name) if operation_name else None
    return DocumentNode(definitions=(OperationDefinitionNode(
        operation=OperationType.QUERY, name=name, variable_definitions=(), directives=(),
        selection_set=SelectionSetNode(selections=())),))


def refusal(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def check_lexically(text: str, limits: RequestLimits) -> None:
    """Length, token count and nesting of ``text``, read token by token, nothing built."""
    if len(text) > limits.max_document_chars:
        raise refusal("DOCUMENT_TOO_LARGE", f"the GraphQL document is over the limit of "
                      f"{limits.max_document_chars} characters",
                      limit=limits.max_document_chars)
    lexer, tokens, depth = Lexer(Source(text)), 0, 0
    while (kind := lexer.advance().kind) is not TokenKind.EOF:
        tokens += 1
        if tokens > limits.max_document_tokens:
            raise refusal("TOO_MANY_TOKENS", f"the GraphQL document has more than "
                          f"{limits.max_document_tokens} tokens",
                          limit=limits.max_document_tokens)
        depth += (kind in _OPENING) - (kind in _CLOSING)
        if depth > MAX_DOCUMENT_NESTING:
            raise refusal("NESTING_TOO_DEEP", f"the GraphQL document nests brackets deeper "
                          f"than {MAX_DOCUMENT_NESTING} levels", limit=MAX_DOCUMENT_NESTING)


def parse_bounded(text: str, limits: RequestLimits) -> DocumentNode:
    try:
        check_lexically(text, limits)
        return parse(text, max_tokens=limits.max_document_tokens)
    except GraphQLError as error:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_PARSE_FAILED"}
        raise


def validate_bounded(schema: Any, document: DocumentNode,
                     rules: tuple[Any, ...]) -> list[GraphQLError]:
    """The fragments' bounds first (the rules walk fragments recursively), then the rules;
    every error names a code."""
    from strawberry.schema.schema import validate_document

    errors = fragment_errors(document) or validate_document(schema, document, rules)
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": _validation_code(error)}
    return errors


def _validation_code(error: GraphQLError) -> str:
    if "exceeds maximum operation depth" in error.message:
        return "QUERY_TOO_DEEP"  # strawberry's QueryDepthLimiter
    if "aliases found" in error.message:
        return "TOO_MANY_ALIASES"  # strawberry's MaxAliasesLimiter
    return "GRAPHQL_VALIDATION_FAILED"


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread of the parsing pool of the running loop."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(WORKER_THREADS)
    return await to_thread.run_sync(function, *args, limiter=limiter)


class BoundedDocuments(SchemaExtension):
    """Replaces strawberry's parsing and validation (and their caches) for every
    operation: bounded, cached by text, and off the event loop on a cache miss."""

    def __init__(self, limits: RequestLimits):
        self.limits = limits

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        text = context.query
        if context.graphql_document is None and text:
            document = _documents.get((text, self.limits))
            if document is None:
                try:
                    document = await off_loop(parse_bounded, text, self.limits)
                except GraphQLError as error:
                    context.pre_execution_errors = [error]
                    document = stand_in(context.operation_name)
                else:
                    _documents.put((text, self.limits), document)
            context.graphql_document = document
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            rules = tuple(context.validation_rules)
            key = (context.query, self.limits, rules)
            errors = _validations.get(key)
            if errors is None:
                errors = await off_loop(validate_bounded, context.schema._schema,
                                        context.graphql_document, rules)
                _validations.put(key, errors)
            context.pre_execution_errors = list(errors)
        yield
