"""Cached answers marked again at a new price, without running the query again.

During a live run every candle moves the mark of its pair, and an answer that marked an
open deal (``portfolio``'s unrealized P/L, each bot's ``pnl.unrealizedPnl``) is stale at the
next candle although nothing it read from the database changed. Running the whole query
again for that (strawberry, three or four queries) is what kept the answer cache missing
about half the time under a live run. Instead, the resolvers that mark at the market's
price say, while the answer is made, where in the answer each marked figure went and how to
work it out again (:func:`marked`); the answer cache then re-marks a kept answer whose read
version still holds by working out those figures at the current prices and writing them
into a copy of the answer (:func:`remark`). The rows they are worked out from are the ones
the answer was made from, so the result is what running the query again would answer.

An answer is re-marked only if every mark it read is accounted for by a figure (the answer
cache counts the reads of each pair: ``application.market_tape.MARKS_READ``; a figure counts
the ones its own working out made, so a deal showing both its ``markPrice`` and its
``unrealizedPnl`` read its pair's mark twice, once for each) and each figure's place is
plain: a field selected by name or alias, without directives or fragments (for a figure
that is itself a field, such as an open deal's ``markPrice`` (:func:`marked_field`): its
response key, fragments or not, without directives). Anything else keeps the answer a miss
at a new price, as before.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from application.market_tape import MARKS_READ
from projections.facts import parse_state

# The figures of the answer being made: set by the answer cache, None otherwise; a None in
# it makes the answer one that cannot be re-marked.
FIGURES: ContextVar[list[Figure | None] | None] = ContextVar("marked_figures", default=None)


@dataclass(frozen=True)
class Figure:
    """Where a marked figure went: ``path`` (the object's place in ``data``), ``value()``
    (the figure at the current prices, ``reads`` the marks it read: pair, how many times),
    and, per key of that object showing it, how it is shown."""

    path: tuple[str | int, ...]
    value: Callable[[], Decimal]
    reads: tuple[tuple[str, int], ...]
    shown: tuple[tuple[str, Callable[[Decimal], Any]], ...]


class MarkReads(set):
    """The marks an answer read (a ``MARKS_READ`` set of (pair, version)), and how many
    times each pair's mark was read (``counts``): a set alone would take two figures of one
    pair for one read."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def add(self, item: Any) -> None:
        self.counts[item[0]] += 1
        super().add(item)

    def merge(self, other: MarkReads) -> None:
        self.counts.update(other.counts)
        self.update(other)


def _measured(value: Callable[[], Any]) -> tuple[Any, MarkReads]:
    """``value()`` and the marks it read, which also count as read by the answer."""
    reads = MarkReads()
    reading = MARKS_READ.set(reads)
    try:
        result = value()
    finally:
        MARKS_READ.reset(reading)
    outer = MARKS_READ.get()
    if isinstance(outer, MarkReads):
        outer.merge(reads)
    elif outer is not None:
        outer.update(reads)
    return result, reads


def marked(info: Any, value: Callable[[], Decimal],
           shown: dict[str, Callable[[Decimal], Any]]) -> Decimal:
    """``value()``, noting that the object ``info`` resolves shows it in its fields named
    in ``shown`` (GraphQL names): the resolver shows what this returns, so the marks it
    read are the figure's."""
    figures = FIGURES.get()
    if figures is None:
        return value()
    result, reads = _measured(value)
    keys = _shown_keys(info, shown)
    if keys is None:
        figures.append(None)  # a fragment, or a field shown only sometimes
        return result
    figures.append(Figure(tuple(info.path.as_list()), value, _pairs(reads), keys))
    return result


# (the field's first node, ``shown``, its keys) by the node's id: every bot of a page
# resolves the same nodes, and working out ``info.selected_fields`` for each was a
# quarter of a page's answer (strawberry converts the selections and directives anew)
_KEYS: dict[int, tuple[Any, Any, tuple | None]] = {}
MAX_KEYS = 1024


def _shown_keys(info: Any, shown: dict[str, Callable[[Decimal], Any]]
                ) -> tuple[tuple[str, Callable[[Decimal], Any]], ...] | None:
    """The response keys under which the object ``info`` resolves shows the fields named
    in ``shown``, or None when a selection is not plain (a fragment, a directive). A pure
    function of the field's nodes in the document (directives make it None whatever
    their arguments), so worked out once per node."""
    nodes = getattr(getattr(info, "_raw_info", info), "field_nodes", ())
    node = nodes[0] if len(nodes) == 1 else None
    found = _KEYS.get(id(node)) if node is not None else None
    if found is not None and found[0] is node and found[1] is shown:
        return found[2]
    from strawberry.types.nodes import SelectedField  # with the schema, not the cache

    keys: tuple | None = ()
    for field in info.selected_fields:
        for selection in field.selections:
            if not isinstance(selection, SelectedField) or selection.directives:
                keys = None
                break
            if selection.name in shown:
                keys += ((selection.alias or selection.name, shown[selection.name]),)
        if keys is None:
            break
    if node is not None:
        if len(_KEYS) >= MAX_KEYS:
            _KEYS.clear()
        _KEYS[id(node)] = (node, shown, keys)
    return keys


def marked_field(info: Any, value: Callable[[], Any], show: Callable[[Any], Any]) -> Any:
    """``value()``, the scalar field ``info`` resolves (shown as ``show`` of it), noted:
    its place is the object holding it, under its response key (the alias if any),
    wherever a fragment selected it; a directive on it makes the answer one that cannot be
    re-marked."""
    figures = FIGURES.get()
    if figures is None:
        return value()
    result, reads = _measured(value)
    if any(field.directives for field in info.selected_fields):
        figures.append(None)
        return result
    *holder, key = info.path.as_list()
    figures.append(Figure(tuple(holder), value, _pairs(reads), ((key, show),)))
    return result


def _pairs(reads: MarkReads) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(reads.counts.items()))


def remarkable(figures: list[Figure | None],
               reads: Counter[str]) -> tuple[Figure, ...] | None:
    """The figures to re-mark an answer with, or None when it cannot be: a place that is
    not plain, or a mark read (``reads``: how many times, per pair) that no figure
    accounts for."""
    if None in figures:
        return None
    accounted: Counter[str] = Counter()
    for figure in figures:
        accounted.update(dict(figure.reads))  # type: ignore[union-attr]
    return tuple(figures) if accounted == reads else None  # type: ignore[arg-type]


def remark(body: bytes, figures: tuple[Figure, ...]) -> bytes | None:
    """``body`` with each figure worked out again (the marks are read now), or None when a
    place is not where it was (it always is, for the same rows)."""
    # orjson where it reads as ``json`` does (a re-mark of a page of bots spent most of
    # its time in ``json.loads``)
    answer = parse_state(body)
    for figure in figures:
        place = answer["data"]
        try:
            for step in figure.path:
                place = place[step]
        except (KeyError, IndexError, TypeError):
            return None
        if not isinstance(place, dict):
            return None
        value = figure.value()
        for key, show in figure.shown:
            place[key] = show(value)
    # as strawberry writes an answer
    return json.dumps(answer, separators=(",", ":")).encode()
