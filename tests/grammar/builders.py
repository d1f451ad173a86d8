"""Short constructors for expected ASTs, so that test tables read like the rules they test."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from grammar import ast as a

NEVER = a.Count(a.CountOp.EXACTLY, 0)


def dur(amount: int, unit: str = "days") -> a.Duration:
    return a.Duration(amount, a.Unit(unit))


def sel(event_type: str | None, where: a.Condition | None = None) -> a.EventSelector:
    return a.EventSelector(event_type, where)


def count(op: str, n: int) -> a.Count:
    return a.Count(a.CountOp[op], n)


def ev(
    event_type: str | None,
    n: a.Count = a.AT_LEAST_ONCE,
    window: a.Duration | None = None,
    where: a.Condition | None = None,
) -> a.EventCount:
    return a.EventCount(sel(event_type, where), n, window)


def cmp(prop: str, op: str, value: a.Value) -> a.Compare:
    return a.Compare(prop, a.CompareOp[op], value)


def text(prop: str, op: str, value: str) -> a.TextMatch:
    return a.TextMatch(prop, a.TextOp[op], value)


def agg(
    func: str,
    prop: str,
    selector: a.EventSelector,
    window: a.Duration | None,
    op: str,
    value: int | float,
) -> a.Aggregate:
    return a.Aggregate(a.AggregateFunc[func], prop, selector, window, a.CompareOp[op], value)


def rec(which: str, selector: a.EventSelector, op: str, duration: a.Duration) -> a.Recency:
    return a.Recency(a.Which[which], selector, a.RecencyOp[op], duration)


def date(*parts: int, ms: int = 0) -> a.DateValue:
    """A DateValue at a UTC moment, computed independently of the grammar's date code."""
    moment = datetime(*parts, tzinfo=UTC)
    return a.DateValue(int(moment.timestamp()) * 1000 + ms)


def AND(*items: a.Condition) -> a.And:
    return a.And(items)


def OR(*items: a.Condition) -> a.Or:
    return a.Or(items)


def NOT(item: a.Condition) -> a.Not:
    return a.Not(item)


def seg(name: str) -> a.InSegment:
    return a.InSegment(name)


def typed(value: Any) -> Any:
    """A form of an AST that also compares the types of literals: AST equality takes
    `true` for 1 and 1.0 for 1, as Python does; these tests must not."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, typed(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name != "span"
            ),
        )
    if isinstance(value, tuple):
        return tuple(typed(v) for v in value)
    if isinstance(value, Enum) or value is None:
        return value
    return (type(value).__name__, value)


def same(got: Any, expected: Any) -> bool:
    """Equal as ASTs and in the types of every literal."""
    return bool(got == expected) and typed(got) == typed(expected)
