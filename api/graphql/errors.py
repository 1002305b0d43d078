"""What the server says about errors: to the client, every error names an
``extensions.code``; to the log, one line per client error (its code, the operation name,
the path, the request id) and never the document, its variables or an error's message,
which may quote them (a password literal). Only a fault of the server itself is logged with
its traceback, and the client sees "Unexpected error." for it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from api.graphql.guard import REQUEST_ID
from api.graphql.scalars import ScalarInputError
from domain.errors import DomainError

log = logging.getLogger("tradetape.graphql")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


def is_fault(error: GraphQLError) -> bool:
    """Raised by no rule of ours: a bug, a store that failed, ... (not the client's)."""
    original = error.original_error
    return original is not None and not isinstance(
        original, GraphQLError | DomainError | ScalarInputError)


def code_of(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str) and code:
        return code
    if is_fault(error):
        return "INTERNAL_SERVER_ERROR"
    if isinstance(error.original_error, DomainError | ScalarInputError):
        return error.original_error.code
    # No path: the request as a whole (its variables); with one: a field's answer.
    return "BAD_USER_INPUT" if not error.path else "BAD_REQUEST"


def log_errors(errors: list[GraphQLError], execution_context: Any = None) -> None:
    """One line for the client's errors of an operation (their codes and paths), and a
    traceback for each fault."""
    operation, request_id = _operation_and_request(execution_context)
    refused = [e for e in errors if not is_fault(e)]
    if refused:
        codes = ",".join(dict.fromkeys(code_of(e) for e in refused))
        log.warning("graphql client error code=%s operation=%s path=%s request=%s", codes,
                    operation, _paths(refused), request_id)
    for fault in (e for e in errors if is_fault(e)):
        log.error("graphql server fault code=INTERNAL_SERVER_ERROR operation=%s path=%s "
                  "request=%s", operation, _paths([fault]), request_id,
                  exc_info=fault.original_error)


def _paths(errors: list[GraphQLError]) -> str:
    paths = dict.fromkeys(".".join(str(p) for p in e.path) for e in errors if e.path)
    return ",".join(paths) or "-"


def _operation_and_request(execution_context: Any) -> tuple[str, str]:
    """Only names (a client's operation name may be any text; it is not logged then)."""
    operation = getattr(execution_context, "operation_name", None)
    if not (isinstance(operation, str) and _NAME.fullmatch(operation)):
        operation = "-"
    context = getattr(execution_context, "context", None)
    scope = getattr(getattr(context, "request", None), "scope", None)
    request_id = scope.get(REQUEST_ID) if isinstance(scope, dict) else None
    return operation, request_id or "-"


class MaskFaults(MaskErrors):
    """A fault's message stays in the log; the client gets "Unexpected error." and a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_fault)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


_ECHOED = re.compile(r"(Variable '\$\w+') got invalid value (.*)$", re.S)
_AT_PATH = re.compile(r" at '[^']*'$")
# "Expected value of type 'X' ..., found: {'apiKey': ...}." and "... encountered error
# '...'; found: { x: ... }." (values given in variables or the document): the value quoted
# at the end.
_FOUND = re.compile(r"[,;] found:? .*$", re.S)
# "Boolean cannot represent a non boolean value: 'the value sent'".
_REPRESENT = re.compile(r"(cannot represent[^:]*): .*$", re.S)


def without_echoed_value(message: str) -> str:
    """graphql-core's message for a value it could not take quotes the value sent
    (``Variable '$input' got invalid value {'apiKey': ...}; Field ... was not provided``,
    ``Expected value of type 'X' to include required field 'y', found: {...}.``):
    a password or an exchange key must not come back in an answer. What is kept: the
    variable, the path inside it, and the reason up to any value it quotes."""
    message = _REPRESENT.sub(r"\1.", _FOUND.sub(".", message))
    found = _ECHOED.match(message)
    if found is None:
        return message
    rest = found.group(2)
    cut = rest.rfind("; ")
    at = _AT_PATH.search(rest[:cut]) if cut >= 0 else None
    reason = rest[cut + 2:].split(": ", 1)[0].rstrip(".") if cut >= 0 else ""
    return (f"{found.group(1)} got an invalid value{at.group() if at else ''}"
            f"{'; ' + reason + '.' if reason else '.'}")


def name_codes(errors: list[GraphQLError] | tuple[GraphQLError, ...]) -> None:
    """Gives each error without an ``extensions.code`` the code :func:`code_of` says, and
    takes the values sent out of the messages that quote them."""
    for error in errors:
        error.message = without_echoed_value(error.message)
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code_of(error)}


class ErrorCodes(SchemaExtension):
    """Every error of an answer names an ``extensions.code`` (runs after the masking)."""

    def on_operation(self) -> Iterator[None]:
        yield
        name_codes(getattr(self.execution_context.result, "errors", None) or ())
