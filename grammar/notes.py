"""Readings of a valid rule that a marketer may not have meant, pointed out with a fix."""

from __future__ import annotations

import itertools
import re

from grammar import ast as a
from grammar.errors import Problem
from grammar.formatter import format_rule

_CONNECTIVE = re.compile(r"\s*(and|or)\s*", re.IGNORECASE)
_AFTER_WHERE = re.compile(r"where[\s(]*$", re.IGNORECASE)


def notes(rule: a.Condition, text: str) -> list[Problem]:
    """Where an `and`/`or` right after an event clause's `where` condition joins a
    condition on the contact to the rule (the language's reading), though it reads like
    more of the filter: `purchased where amount > 100 and sku is "B"`."""
    starts = _line_starts(text)
    found = []
    for node in a.walk(rule):
        if not isinstance(node, a.And | a.Or):
            continue
        for x, y in itertools.pairwise(node.items):
            clause, condition = _unnegated(x), _unnegated(y)
            if not isinstance(clause, a.EVENT_CONDITIONS) or not isinstance(
                condition, a.PROPERTY_CONDITIONS
            ):
                continue
            where = clause.event.filter
            if where is None or where.span is None or y.span is None:
                continue
            start, end = (
                _offset(starts, where.span.line, where.span.column),
                _offset(starts, where.span.end_line, where.span.end_column),
            )
            between = text[end : _offset(starts, y.span.line, y.span.column)]
            if not _AFTER_WHERE.search(text[:start]) or not _CONNECTIVE.fullmatch(between):
                continue  # a shorthand, or the filter closed (a parenthesis, a count, a window)
            joined = "and" if isinstance(node, a.And) else "or"
            found.append(
                Problem(
                    y.span.line,
                    y.span.column,
                    f"`{format_rule(y)}` is a condition on the contact, joined to the rule by"
                    f" `{joined}`, not part of the `where` before it",
                    hint=f"to filter the events on it too, write where ({format_rule(where)}"
                    f" {joined} {format_rule(y)})",
                )
            )
    return found


def _unnegated(node: a.Condition) -> a.Condition:
    while isinstance(node, a.Not):
        node = node.item
    return node


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def _offset(starts: list[int], line: int, column: int) -> int:
    return starts[line - 1] + column - 1
