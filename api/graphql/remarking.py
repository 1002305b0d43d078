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
cache counts the reads: ``application.market_tape.MARKS_READ``) and each figure's place is
plain: a field selected by name or alias, without directives or fragments (for a figure
that is itself a field, such as an open deal's ``markPrice`` (:func:`marked_field`): its
response key, fragments or not, without directives). Anything else keeps the answer a miss
at a new price, as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from projections.facts import parse_state

# The figures of the answer being made: set by the answer cache, None otherwise; a None in
# it makes the answer one that cannot be re-marked.
FIGURES: ContextVar[list[Figure | None] | None] = ContextVar("marked_figures", default=None)


@dataclass(frozen=True)
class Figure:
    """Where a marked figure went: ``path`` (the object's place in ``data``), ``value()``
    (the figure at the current prices, ``reads`` marks read), and, per key of that object
    showing it, how it is shown."""

    path: tuple[str | int, ...]
    value: Callable[[], Decimal]
    reads: int
    shown: tuple[tuple[str, Callable[[Decimal], Any]], ...]


class MarkReads(set):
    """The marks an answer read (a ``MARKS_READ`` set), and how many times one was read."""

    reads = 0

    def add(self, item: Any) -> None:
        self.reads += 1
        super().add(item)


def marked(info: Any, value: Callable[[], Decimal], reads: int,
           shown: dict[str, Callable[[Decimal], Any]]) -> None:
    """Notes that the object ``info`` resolves shows ``value()`` (which read ``reads``
    marks) in its fields named in ``shown`` (GraphQL names)."""
    figures = FIGURES.get()
    if figures is None:
        return
    from strawberry.types.nodes import SelectedField  # with the schema, not the cache

    keys: list[tuple[str, Callable[[Decimal], Any]]] = []
    for field in info.selected_fields:
        for selection in field.selections:
            if not isinstance(selection, SelectedField) or selection.directives:
                figures.append(None)  # a fragment, or a field shown only sometimes
                return
            if selection.name in shown:
                keys.append((selection.alias or selection.name, shown[selection.name]))
    figures.append(Figure(tuple(info.path.as_list()), value, reads, tuple(keys)))


def marked_field(info: Any, value: Callable[[], Any], reads: int,
                 show: Callable[[Any], Any]) -> None:
    """Notes that the scalar field ``info`` resolves is ``show(value())`` (which read
    ``reads`` marks): its place is the object holding it, under its response key (the
    alias if any), wherever a fragment selected it; a directive on it makes the answer one
    that cannot be re-marked."""
    figures = FIGURES.get()
    if figures is None:
        return
    if any(field.directives for field in info.selected_fields):
        figures.append(None)
        return
    *holder, key = info.path.as_list()
    figures.append(Figure(tuple(holder), value, reads, ((key, show),)))


def remarkable(figures: list[Figure | None], reads: int) -> tuple[Figure, ...] | None:
    """The figures to re-mark an answer with, or None when it cannot be: a place that is
    not plain, or a mark read that no figure accounts for."""
    if None in figures or sum(f.reads for f in figures) != reads:  # type: ignore[union-attr]
        return None
    return tuple(figures)  # type: ignore[arg-type]


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
