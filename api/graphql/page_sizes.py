"""One rule for every paged field: ``first`` or ``last`` (how many items a page holds) is 1 to
``MAX_PAGE`` (100), or left out / null for the field's default. Anything else is refused
before the operation runs with ``INVALID_PAGE_SIZE`` (and ``min`` / ``max`` in the
extensions), never clamped silently: a client asking for 0 or 1000 items has a bug it
should hear about.

The check walks the document (operations and fragments alike) with this request's
variables, so it covers every field that takes ``first``, today's and tomorrow's; a
variable the request leaves out counts at its declared default (``query($n: Int = -5)``
runs the field with -5 as surely as ``first: -5`` does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from api.graphql.limits import argument_value
from projections.queries import MAX_PAGE

MIN_PAGE = 1
PAGE_ARGUMENTS = ("first", "last")  # forwards and backwards
# Plain lists (not connections) with a maximum of their own: a webhook's ``signals(last)``
# shows up to the last 1,000 it received (issue 12), in one list.
OWN_MAXIMUM = {"signals": 1000}


def _fields(document: DocumentNode) -> Iterator[FieldNode]:
    """Every field of every operation and fragment (iteratively: no recursion)."""
    stack = [d.selection_set for d in document.definitions
             if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)]
    while stack:
        for node in stack.pop().selections:
            if isinstance(node, FieldNode):
                yield node
            if getattr(node, "selection_set", None) is not None:
                stack.append(node.selection_set)


def with_defaults(document: DocumentNode, variables: Mapping[str, Any],
                  operation_name: str | None = None) -> dict[str, Any]:
    """The request's variables, and the declared default of each one it leaves out (a null
    sent stays null, as GraphQL runs it). The operation that runs, or every one when which
    is not known yet (graphql-core refuses such a document later anyway)."""
    chosen = get_operation_ast(document, operation_name)
    operations = [chosen] if chosen is not None else [
        d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    defaults: dict[str, Any] = {}
    for operation in operations:
        for definition in operation.variable_definitions or ():
            if definition.default_value is not None:
                defaults.setdefault(definition.variable.name.value,
                                    value_from_ast_untyped(definition.default_value))
    return {**defaults, **variables}


def page_size_errors(document: DocumentNode,
                     variables: Mapping[str, Any]) -> list[GraphQLError]:
    """``INVALID_PAGE_SIZE`` for each field asking for a page out of 1..MAX_PAGE."""
    errors = []
    for node in _fields(document):
        for argument in PAGE_ARGUMENTS:
            size = argument_value(node, argument, variables)
            name = node.name.value
            most = OWN_MAXIMUM.get(name, MAX_PAGE)
            if isinstance(size, int) and not isinstance(size, bool) and not (
                    MIN_PAGE <= size <= most):
                errors.append(GraphQLError(
                    f"{name}({argument}: {size}) is out of range: a page holds {MIN_PAGE} "
                    f"to {most} items", node, extensions={
                        "code": "INVALID_PAGE_SIZE", "field": name, "argument": argument,
                        "min": MIN_PAGE, "max": most}))
    return errors


class PageSizes(SchemaExtension):
    """After the (cached) validation: the page sizes, which depend on the variables."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors == [] and context.graphql_document is not None:
            document = context.graphql_document
            errors = page_size_errors(document, with_defaults(
                document, context.variables or {}, context.operation_name))
            if errors:
                context.pre_execution_errors = errors
        yield
