"""One rule for every paged field: ``first`` or ``last`` (how many items a page holds) is 1 to
``MAX_PAGE`` (100), or left out / null for the field's default. Anything else is refused
before the operation runs with ``INVALID_PAGE_SIZE`` (and ``min`` / ``max`` in the
extensions), never clamped silently: a client asking for 0 or 1000 items has a bug it
should hear about.

The check walks the document (operations and fragments alike) with this request's
variables, so it covers every field that takes ``first``, today's and tomorrow's.
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
)
from strawberry.extensions import SchemaExtension

from api.graphql.limits import argument_value
from projections.queries import MAX_PAGE

MIN_PAGE = 1
PAGE_ARGUMENTS = ("first", "last")  # forwards and backwards


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


def page_size_errors(document: DocumentNode,
                     variables: Mapping[str, Any]) -> list[GraphQLError]:
    """``INVALID_PAGE_SIZE`` for each field asking for a page out of 1..MAX_PAGE."""
    errors = []
    for node in _fields(document):
        for argument in PAGE_ARGUMENTS:
            size = argument_value(node, argument, variables)
            if isinstance(size, int) and not isinstance(size, bool) and not (
                    MIN_PAGE <= size <= MAX_PAGE):
                name = node.name.value
                errors.append(GraphQLError(
                    f"{name}({argument}: {size}) is out of range: a page holds {MIN_PAGE} "
                    f"to {MAX_PAGE} items", node, extensions={
                        "code": "INVALID_PAGE_SIZE", "field": name, "argument": argument,
                        "min": MIN_PAGE, "max": MAX_PAGE}))
    return errors


class PageSizes(SchemaExtension):
    """After the (cached) validation: the page sizes, which depend on the variables."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors == [] and context.graphql_document is not None:
            errors = page_size_errors(context.graphql_document, context.variables or {})
            if errors:
                context.pre_execution_errors = errors
        yield
