"""Limits that reject abusive operations before they run, each with a clear message and
code: bounds on fragments (how deeply spreads chain, and how many fields the document
stands for once every spread is expanded), a depth limit (strawberry's QueryDepthLimiter),
an alias limit, and a cost estimate.

The cost of an operation is the sum over its selected fields of a weight (1, more for
fields that read the event log), where the fields under a list count once per item it may
hold: ``first`` for a connection (or its default), a typical size for other lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from api.http_limits import RequestLimits
from projections.queries import MAX_PAGE

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_COST = 5000
MAX_FRAGMENT_DEPTH = 10  # fragments spreading fragments, ... (the rules recurse through them)
MAX_EXPANDED_FIELDS = 5000  # fields once every spread is expanded (each costs at least 1)
# Fields that read the event log or replay it, rather than one row of a view.
WEIGHTS = {"config": 5, "fills": 5, "sells": 5, "history": 100, "systemStatus": 5, "me": 2}
AS_OF_WEIGHT = 1000  # portfolio(asOf): the whole log is replayed
DEFAULT_FIRST = {"leaderboard": 20}
LIST_SIZES = {"orders": 10, "fills": 10, "sells": 4, "pnlSeries": 30, "balances": 5, "events": 50,
              "levels": 25, "errors": 3}


def argument_value(node: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    """The value of argument ``name`` of ``node``: a variable's value, an Int, None when
    left out or null, else the literal node."""
    for argument in node.arguments or ():
        if argument.name.value != name:
            continue
        value = argument.value
        if isinstance(value, VariableNode):
            return variables.get(value.name.value)
        if isinstance(value, IntValueNode):
            return int(value.value)
        return None if isinstance(value, NullValueNode) else value
    return None


def _items(node: FieldNode, variables: Mapping[str, Any]) -> int:
    name = node.name.value
    first = argument_value(node, "first", variables)
    if not isinstance(first, int):
        first = argument_value(node, "last", variables)  # a page counted backwards
    if isinstance(first, int):
        return max(1, min(first, MAX_PAGE))
    if any(a.name.value in ("first", "last") for a in node.arguments or ()) or (
            name in DEFAULT_FIRST):
        return DEFAULT_FIRST.get(name, 50)
    if name in ("bots", "deals", "auditLog"):
        return 50
    return LIST_SIZES.get(name, 1)


def _weight(node: FieldNode, variables: Mapping[str, Any]) -> int:
    name = node.name.value
    if name == "portfolio" and argument_value(node, "asOf", variables) is not None:
        return AS_OF_WEIGHT
    return WEIGHTS.get(name, 1)


def selection_cost(selections: SelectionSetNode | None,
                   fragments: Mapping[str, FragmentDefinitionNode],
                   variables: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> int:
    total = 0
    for node in selections.selections if selections else ():
        if isinstance(node, FieldNode):
            if node.name.value.startswith("__"):
                continue  # introspection
            below = selection_cost(node.selection_set, fragments, variables, seen)
            total += _weight(node, variables) + _items(node, variables) * below
        elif isinstance(node, InlineFragmentNode):
            total += selection_cost(node.selection_set, fragments, variables, seen)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name in fragments and name not in seen:  # cycles are another rule's error
                total += selection_cost(fragments[name].selection_set, fragments, variables,
                                        seen | {name})
    return total


def cost_errors(document: DocumentNode, variables: Mapping[str, Any],
                max_cost: int = MAX_COST) -> list[GraphQLError]:
    """``QUERY_TOO_COSTLY`` for each operation of ``document`` over ``max_cost``."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    errors = []
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        cost = selection_cost(op.selection_set, fragments, variables)
        if cost > max_cost:
            name = op.name.value if op.name else "the operation"
            errors.append(GraphQLError(
                f"{name} is too costly: its estimated cost {cost} exceeds the limit "
                f"of {max_cost}; ask for fewer items (first) or fewer nested fields",
                op, extensions={"code": "QUERY_TOO_COSTLY", "cost": cost,
                                "limit": max_cost}))
    return errors


def _direct(selections: SelectionSetNode) -> tuple[int, list[str]]:
    """The fields under ``selections`` and the fragments they spread, fragments not
    expanded (iteratively: the document's nesting is bounded, not this walk's)."""
    fields, spreads, stack = 0, [], [selections]
    while stack:
        for node in stack.pop().selections:
            if isinstance(node, FragmentSpreadNode):
                spreads.append(node.name.value)
                continue
            fields += isinstance(node, FieldNode)
            if node.selection_set is not None:
                stack.append(node.selection_set)
    return fields, spreads


def _expanded(name: str, direct: Mapping[str, tuple[int, list[str]]],
              known: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """(how deeply spreads chain below, fields once expanded) of fragment ``name``, into
    ``known`` with every fragment it reaches; None when it reaches a cycle."""
    stack, open_ = [(name, False)], set()
    while stack:
        current, children_done = stack.pop()
        if current in known or current not in direct:
            continue
        children = [s for s in direct[current][1] if s in direct]
        if not children_done:
            if current in open_:
                return None
            open_.add(current)
            stack.append((current, True))
            stack.extend((child, False) for child in children if child not in known)
            if any(child in open_ and child not in known for child in children):
                return None
            continue
        open_.discard(current)
        depth = 1 + max((known[c][0] for c in children), default=0)
        size = direct[current][0] + sum(known[c][1] for c in children)
        known[current] = (depth, min(size, MAX_EXPANDED_FIELDS + 1))
    return known.get(name)


def fragment_errors(document: DocumentNode) -> list[GraphQLError]:
    """``FRAGMENT_CYCLE``, ``FRAGMENTS_TOO_DEEP`` or ``QUERY_TOO_LARGE`` for the first
    definition of ``document`` that breaks a bound; checked without recursion, before any
    validation rule walks the fragments."""
    direct = {d.name.value: _direct(d.selection_set) for d in document.definitions
              if isinstance(d, FragmentDefinitionNode)}
    known: dict[str, tuple[int, int]] = {}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            continue
        fields, spreads = _direct(definition.selection_set)
        below = [_expanded(s, direct, known) for s in spreads if s in direct]
        name = definition.name.value if definition.name else "the operation"
        if any(b is None for b in below):
            return [GraphQLError(f"{name} reaches a fragment that spreads itself",
                                 definition, extensions={"code": "FRAGMENT_CYCLE"})]
        depth = max((b[0] for b in below), default=0)
        size = fields + sum(b[1] for b in below)
        if depth > MAX_FRAGMENT_DEPTH:
            return [GraphQLError(
                f"{name} chains fragments {depth} deep; the limit is {MAX_FRAGMENT_DEPTH}",
                definition, extensions={"code": "FRAGMENTS_TOO_DEEP",
                                        "limit": MAX_FRAGMENT_DEPTH})]
        if size > MAX_EXPANDED_FIELDS:
            return [GraphQLError(
                f"{name} selects more than {MAX_EXPANDED_FIELDS} fields once its fragments "
                f"are expanded", definition, extensions={"code": "QUERY_TOO_LARGE",
                                                         "limit": MAX_EXPANDED_FIELDS})]
    return []


# Built once, so that a document's validation (which depends on the rules, not on the
# variables) can be cached across requests.
_DEPTH_AND_ALIASES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


class CostLimiter(SchemaExtension):
    """After the (cached) validation of the document, its cost with this request's
    variables, which no cached result can know."""

    def __init__(self, max_cost: int = MAX_COST):
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and context.graphql_document is not None:
            errors = cost_errors(context.graphql_document, context.variables or {},
                                 self.max_cost)
            if errors:
                context.pre_execution_errors = errors
        yield


def limits(request_limits: RequestLimits) -> list[Any]:
    """Extension factories (strawberry builds each anew for every operation), in the order
    they must run: the depth and alias rules join validation, the document is parsed and
    validated (bounded, cached by text, off the event loop), then the page sizes and the
    cost are checked."""
    from api.graphql.documents import BoundedDocuments
    from api.graphql.page_sizes import PageSizes

    return [lambda: AddValidationRules(list(_DEPTH_AND_ALIASES)),
            lambda: BoundedDocuments(request_limits), PageSizes, CostLimiter]
