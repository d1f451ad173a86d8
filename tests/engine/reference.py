"""A brute-force reading of RULES.md: obviously correct, slow, and independent of engine/.

Every function takes a contact's events and an instant and answers from the definitions,
re-scanning everything each time; `true_next_change` finds when the answer changes by
stepping through time.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from engine.history import Event
from grammar import ast as a

SegmentOracle = Callable[[str, int], bool]


def _instant(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            moment = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        return None
    return round(moment.timestamp() * 1000)


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isnan(value)
    return isinstance(value, int)


def _caseless(text: str) -> str:
    """Unicode's canonical caseless match (D145): NFD(casefold(NFD(text)))."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def positive_equal(value: Any, literal: Any) -> bool:
    if value is None:
        return False
    if isinstance(literal, a.DateValue):
        return _instant(value) == literal.ms and _instant(value) is not None
    if isinstance(literal, bool):
        return isinstance(value, bool) and value == literal
    if isinstance(literal, str):
        return isinstance(value, str) and _caseless(value) == _caseless(literal)
    return _number(value) and value == literal


def ordered(value: Any, literal: Any) -> int | None:
    """The sign of value - literal (Python compares an int and a float exactly, where
    subtracting them rounds); None when they do not compare."""
    if value is None:
        return None
    if isinstance(literal, a.DateValue):
        value = _instant(value)
        if value is None:
            return None
        literal = literal.ms
    elif not (_number(literal) and _number(value)):
        return None
    return (value > literal) - (value < literal)


def _float(exact: Fraction) -> float:
    """The nearest double; beyond them all, infinity (1e308 + 1e308)."""
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def compare(value: Any, op: a.CompareOp, literal: Any) -> bool:
    if op is a.CompareOp.EQ:
        return positive_equal(value, literal)
    if op is a.CompareOp.NE:
        return not positive_equal(value, literal)
    diff = ordered(value, literal)
    if diff is None:
        return False
    return {
        a.CompareOp.GT: diff > 0,
        a.CompareOp.GE: diff >= 0,
        a.CompareOp.LT: diff < 0,
        a.CompareOp.LE: diff <= 0,
    }[op]


def value_test(cond: a.Condition, value: Any, t: int | None) -> bool:
    if isinstance(cond, a.Known):
        return (value is not None) is cond.known
    if isinstance(cond, a.Compare):
        return compare(value, cond.op, cond.value)
    if isinstance(cond, a.Between):
        return compare(value, a.CompareOp.GE, cond.low) and compare(
            value, a.CompareOp.LE, cond.high
        )
    if isinstance(cond, a.InList):
        found = any(positive_equal(value, x) for x in cond.values)
        return not found if cond.negated else found
    if isinstance(cond, a.TextMatch):
        if not isinstance(value, str):
            return False
        v, n = _caseless(value), _caseless(cond.value)  # as the README says text is compared
        if cond.op is a.TextOp.CONTAINS:
            return n in v
        if cond.op is a.TextOp.STARTS_WITH:
            return v.startswith(n)
        return v.endswith(n)
    if isinstance(cond, a.DateCompare):
        moment = _instant(value)
        if moment is None:
            return False
        return moment < cond.value.ms if cond.op is a.DateOp.BEFORE else moment > cond.value.ms
    if isinstance(cond, a.Ago):
        moment = _instant(value)
        if moment is None or t is None:
            return False
        n = cond.duration.ms
        if cond.op is a.AgoOp.MORE_THAN:
            return moment <= t - n
        return t - n < moment <= t
    raise TypeError(cond)


def filter_test(cond: a.Condition | None, data: dict) -> bool:
    if cond is None:
        return True
    if isinstance(cond, a.And):
        return all(filter_test(c, data) for c in cond.items)
    if isinstance(cond, a.Or):
        return any(filter_test(c, data) for c in cond.items)
    if isinstance(cond, a.Not):
        return not filter_test(cond.item, data)
    return value_test(cond, data.get(cond.prop), None)


def selected(sel: a.EventSelector, events: list[Event], t: int) -> list[Event]:
    return [
        e
        for e in events
        if e.occurred_at <= t
        and (sel.type is None or e.type == sel.type)
        and filter_test(sel.filter, dict(e.data))
    ]


def in_window(events: list[Event], window: a.Duration | None, t: int) -> list[Event]:
    if window is None:
        return events
    return [e for e in events if t - window.ms < e.occurred_at <= t]


def property_value(events: list[Event], prop: str, t: int) -> Any:
    updates = [
        e for e in events if e.type == "contact_updated" and e.occurred_at <= t and prop in e.data
    ]
    if not updates:
        return None
    latest = max(updates, key=lambda e: (e.occurred_at, e.position))
    return latest.data[prop]


def holds(rule: a.Condition, events: list[Event], t: int, seg: SegmentOracle | None) -> bool:
    """The rule's value for a contact at t, straight from the definitions."""
    if isinstance(rule, a.And):
        return all(holds(c, events, t, seg) for c in rule.items)
    if isinstance(rule, a.Or):
        return any(holds(c, events, t, seg) for c in rule.items)
    if isinstance(rule, a.Not):
        return not holds(rule.item, events, t, seg)
    if isinstance(rule, a.InSegment):
        assert seg is not None
        return seg(rule.segment, t)
    if isinstance(rule, a.EventCount):
        n = len(in_window(selected(rule.event, events, t), rule.window, t))
        k = rule.count.n
        return {
            a.CountOp.AT_LEAST: n >= k,
            a.CountOp.AT_MOST: n <= k,
            a.CountOp.EXACTLY: n == k,
            a.CountOp.MORE_THAN: n > k,
            a.CountOp.FEWER_THAN: n < k,
        }[rule.count.op]
    if isinstance(rule, a.Aggregate):
        chosen = in_window(selected(rule.event, events, t), rule.window, t)
        numbers = [e.data[rule.prop] for e in chosen if _number(e.data.get(rule.prop))]
        # Sums of the numbers as written (10.1 + 20.2 is 30.3), rounded once.
        exact = sum(Fraction(repr(x)) for x in numbers)
        if rule.func is a.AggregateFunc.TOTAL:
            result: Any = int(exact) if all(type(x) is int for x in numbers) else _float(exact)
        elif not numbers:
            result = None
        elif rule.func is a.AggregateFunc.AVERAGE:
            result = _float(exact / len(numbers))
        elif rule.func is a.AggregateFunc.MINIMUM:
            result = min(numbers)
        else:
            result = max(numbers)
        return compare(result, rule.op, rule.value)
    if isinstance(rule, a.Recency):
        chosen = selected(rule.event, events, t)
        if not chosen:
            return False
        times = [e.occurred_at for e in chosen]
        anchor = min(times) if rule.which is a.Which.FIRST else max(times)
        if rule.op is a.RecencyOp.WITHIN:
            return anchor > t - rule.duration.ms
        return anchor <= t - rule.duration.ms
    return value_test(rule, property_value(events, rule.prop, t), t)


def member(
    rule: a.Condition, events: list[Event], t: int, seg: SegmentOracle | None = None
) -> bool:
    """Membership: the contact exists at t and the rule holds."""
    if not any(e.occurred_at <= t for e in events):
        return False
    return holds(rule, events, t, seg)


def true_next_change(
    value_at: Callable[[int], bool], t: int, horizon: int, step: int = 1000
) -> int | None:
    """The first instant after t, up to horizon, at which value_at differs from value_at(t).

    Only correct when every change lies on a multiple of `step` (tests arrange that)."""
    start = value_at(t)
    instant = (t // step + 1) * step
    while instant <= horizon:
        if value_at(instant) != start:
            return instant
        instant += step
    return None
