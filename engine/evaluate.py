"""Evaluation of a rule for one contact at one instant (RULES.md, "Meaning").

`compile_rule` turns an AST into a tree of small evaluator objects once per rule
version. Each answers, for a contact's history and an instant t:
- its value at t;
- a lower bound on the next instant after t at which the value can change with no
  new event (exact for every leaf; for and/or/not derived from the children), or None;
- on request, an explanation: the node's value with its evidence.
"""

from __future__ import annotations

import bisect
import heapq
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.history import Event, History
from engine.values import (
    as_stored,
    average,
    compare,
    fold,
    instant_of,
    is_number,
    sum_compares,
    total,
)
from grammar import ast as a

Next = int | None
Outcome = tuple[bool, Next]


@dataclass(frozen=True)
class Explanation:
    """One node of an evaluation: its rule text, value, next change and evidence."""

    kind: str
    text: str
    value: bool
    next_change: int | None
    details: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[Explanation, ...] = ()


class Segments(Protocol):
    """Membership of the same contact in other segments, at the same instant."""

    def membership(self, segment_id: str, t: int) -> Outcome:
        """Whether the contact is in the segment at t, and when that can next change."""
        ...

    def explain(self, segment_id: str, t: int) -> Explanation:
        """The referenced segment's own explanation at t."""
        ...


@dataclass
class Context:
    """What a rule reads: the contact's history and its other segments."""

    history: History
    segments: Segments | None = None


class Node(Protocol):
    def evaluate(self, ctx: Context, t: int) -> Outcome: ...

    def explain(self, ctx: Context, t: int) -> Explanation: ...


def format_rule(node: a.Condition) -> str:
    """The canonical text of a node (imported late: only explanations need it)."""
    from grammar.formatter import format_rule as fmt

    return fmt(node)


# ---- next-change arithmetic ----


def earliest(*instants: Next) -> Next:
    """The earliest of the instants that exist."""
    present = [i for i in instants if i is not None]
    return min(present) if present else None


def _all_must_change(instants: Iterable[Next]) -> Next:
    """A bound for "every one of these must change first": the latest, None if any never does."""
    latest = None
    for i in instants:
        if i is None:
            return None
        latest = i if latest is None else max(latest, i)
    return latest


def next_flip(
    value: bool, candidates: Iterable[int], value_at: Callable[[int], bool], t: int
) -> Next:
    """The first candidate instant after t (candidates sorted) at which value_at differs."""
    last = t
    for instant in candidates:
        if instant <= last:
            continue
        last = instant
        if value_at(instant) != value:
            return instant
    return None


def _window_instants(times: list[int], t: int, window: int | None) -> Iterator[int]:
    """Instants after t at which an event enters (its time) or leaves (time + window)."""
    entering = times[bisect.bisect_right(times, t) :]
    if window is None:
        return iter(entering)
    leaving = (o + window for o in times[bisect.bisect_right(times, t - window) :])
    return heapq.merge(entering, leaving)


# ---- conditions on a value (a contact's property or an event's) ----

ValueTest = Callable[[Any, int | None], bool]


# `=` and the orderings, between numbers as SQLite holds them (engine.values.as_stored).
RELATIONS: dict[a.CompareOp, Callable[[Any, Any], bool]] = {
    a.CompareOp.EQ: operator.eq,
    a.CompareOp.GT: operator.gt,
    a.CompareOp.GE: operator.ge,
    a.CompareOp.LT: operator.lt,
    a.CompareOp.LE: operator.le,
}

# `contains`, `starts with`, `ends with`, of folded texts (engine.values.fold).
TEXT_TESTS: dict[a.TextOp, Callable[[str, str], bool]] = {
    a.TextOp.CONTAINS: str.__contains__,
    a.TextOp.STARTS_WITH: str.startswith,
    a.TextOp.ENDS_WITH: str.endswith,
}


def compile_value_test(cond: a.Condition) -> ValueTest:
    """A property condition as a test of the property's raw value (None: unknown) at t."""
    if isinstance(cond, a.Known):
        known = cond.known
        return lambda v, t: (v is not None) == known
    if isinstance(cond, a.Compare):
        op, lit = cond.op, cond.value
        if isinstance(lit, str) and op in (a.CompareOp.EQ, a.CompareOp.NE):
            # compare()'s meaning, the literal folded once rather than at every value.
            folded, equal = fold(lit), op is a.CompareOp.EQ
            return lambda v, t: (isinstance(v, str) and fold(v) == folded) == equal
        if is_number(lit):
            # compare()'s meaning for a number, without its dispatch on the literal's kind at
            # every value (a filter tests every event of a clause's range).
            stored = as_stored(lit)
            if op is a.CompareOp.NE:
                return lambda v, t: not (is_number(v) and as_stored(v) == stored)
            holds = RELATIONS[op]
            return lambda v, t: is_number(v) and holds(as_stored(v), stored)
        return lambda v, t: compare(v, op, lit)
    if isinstance(cond, a.Between):
        low, high = cond.low, cond.high
        return lambda v, t: compare(v, a.CompareOp.GE, low) and compare(v, a.CompareOp.LE, high)
    if isinstance(cond, a.InList):
        # Texts in a set, folded once: a list of hundreds is one lookup, not hundreds.
        texts = frozenset(fold(x) for x in cond.values if isinstance(x, str))
        others = tuple(x for x in cond.values if not isinstance(x, str))
        negated = cond.negated
        return lambda v, t: (
            (
                (isinstance(v, str) and fold(v) in texts)
                or any(compare(v, a.CompareOp.EQ, x) for x in others)
            )
            != negated
        )
    if isinstance(cond, a.TextMatch):
        needle, method = fold(cond.value), TEXT_TESTS[cond.op]
        return lambda v, t: isinstance(v, str) and method(fold(v), needle)
    if isinstance(cond, a.DateCompare):
        ms, before = cond.value.ms, cond.op is a.DateOp.BEFORE
        return lambda v, t: (m := instant_of(v)) is not None and (m < ms if before else m > ms)
    if isinstance(cond, a.Ago):
        n, more = cond.duration.ms, cond.op is a.AgoOp.MORE_THAN
        return lambda v, t: (
            (m := instant_of(v)) is not None
            and t is not None
            and (m <= t - n if more else t - n < m <= t)
        )
    raise TypeError(f"not a property condition: {type(cond).__name__}")


DataTest = Callable[[Mapping[str, Any]], bool]


def compile_filter(cond: a.Condition) -> DataTest:
    """An event filter (`where ...`) as a test of an event's data."""
    if isinstance(cond, a.Not):
        inner = compile_filter(cond.item)
        return lambda d: not inner(d)
    if isinstance(cond, a.And):
        parts = [compile_filter(c) for c in cond.items]
        return lambda d: all(p(d) for p in parts)
    if isinstance(cond, a.Or):
        parts = [compile_filter(c) for c in cond.items]
        return lambda d: any(p(d) for p in parts)
    if isinstance(cond, a.Ago):
        raise ValueError("`ago` cannot be used inside a `where` filter")
    test, prop = compile_value_test(cond), cond.prop  # type: ignore[union-attr]
    return lambda d: test(d.get(prop), None)


# ---- leaves over events ----


def _evidence(events: Iterable[Event]) -> list[dict[str, Any]]:
    return [
        {"event_id": e.event_id, "position": e.position, "occurred_at": e.occurred_at}
        for e in events
    ]


def _window_details(t: int, window: int | None) -> dict[str, Any]:
    return {"window": None if window is None else {"after": t - window, "until": t}}


COUNT_TESTS: dict[a.CountOp, Callable[[int, int], bool]] = {
    a.CountOp.AT_LEAST: lambda c, k: c >= k,
    a.CountOp.AT_MOST: lambda c, k: c <= k,
    a.CountOp.EXACTLY: lambda c, k: c == k,
    a.CountOp.MORE_THAN: lambda c, k: c > k,
    a.CountOp.FEWER_THAN: lambda c, k: c < k,
}


class _EventLeaf:
    """Shared parts of the leaves that read one selector's events."""

    def __init__(self, node: a.Condition, selector: a.EventSelector) -> None:
        self.node = node
        self.selector = selector
        self.matches = None if selector.filter is None else compile_filter(selector.filter)

    def _events(self, ctx: Context) -> tuple[list[Event], list[int]]:
        return ctx.history.selected(self, self.selector.type, self.matches)


class EventCountNode(_EventLeaf):
    def __init__(self, node: a.EventCount) -> None:
        super().__init__(node, node.event)
        self.window = None if node.window is None else node.window.ms
        self.test = COUNT_TESTS[node.count.op]
        self.k = node.count.n

    def _count(self, times: list[int], t: int) -> int:
        hi = bisect.bisect_right(times, t)
        if self.window is None:
            return hi
        return hi - bisect.bisect_right(times, t - self.window)

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        _, times = self._events(ctx)
        n = len(times)
        if n and times[-1] > t:  # events dated after t: step through what happens
            value = self.test(self._count(times, t), self.k)
            return value, next_flip(
                value,
                _window_instants(times, t, self.window),
                lambda i: self.test(self._count(times, i), self.k),
                t,
            )
        if self.window is None:
            return self.test(n, self.k), None
        lo = bisect.bisect_right(times, t - self.window) if n and times[0] <= t - self.window else 0
        count = n - lo
        value = self.test(count, self.k)
        # Nothing will enter; events leave the oldest first, at time + window.
        return value, self._flip_as_events_leave(times, lo, self.window, value)

    def _flip_as_events_leave(
        self, times: Sequence[int], lo: int, window: int, value: bool
    ) -> int | None:
        """The instant the events from `lo` on, leaving their window, change the value, or None.

        Every count test is constant above k and below k, so the value can change only when
        the count first drops to k or less, and when it first drops below k. Events dated
        alike leave together: two at once can take the count past k, and change nothing."""
        n = len(times)
        for remaining in (self.k, self.k - 1):
            if 0 <= remaining < n - lo:
                leaving = times[n - remaining - 1]  # whose leaving takes the count to `remaining`
                if self.test(n - bisect.bisect_right(times, leaving), self.k) != value:
                    return leaving + window
        return None

    def explain(self, ctx: Context, t: int) -> Explanation:
        events, times = self._events(ctx)
        value, nxt = self.evaluate(ctx, t)
        hi = bisect.bisect_right(times, t)
        lo = 0 if self.window is None else bisect.bisect_right(times, t - self.window)
        return Explanation(
            "event",
            format_rule(self.node),
            value,
            nxt,
            {
                "event_type": self.selector.type,
                "count": hi - lo,
                "events": _evidence(events[lo:hi]),
                **_window_details(t, self.window),
            },
        )


class AggregateNode(_EventLeaf):
    def __init__(self, node: a.Aggregate) -> None:
        super().__init__(node, node.event)
        self.window = None if node.window is None else node.window.ms
        self.func = node.func
        self.prop = node.prop
        self.op = node.op
        self.value = node.value

    def _used(self, events: list[Event], times: list[int], t: int) -> list[Event]:
        hi = bisect.bisect_right(times, t)
        lo = 0 if self.window is None else bisect.bisect_right(times, t - self.window)
        return [e for e in events[lo:hi] if is_number(e.data.get(self.prop))]

    def _aggregate(self, events: list[Event], times: list[int], t: int) -> tuple[Any, list]:
        used = self._used(events, times, t)
        numbers = [e.data[self.prop] for e in used]
        if self.func is a.AggregateFunc.TOTAL:
            return total(numbers), used
        if not numbers:
            return None, used
        if self.func is a.AggregateFunc.AVERAGE:
            return average(numbers), used
        if self.func is a.AggregateFunc.MINIMUM:
            return min(numbers), used
        return max(numbers), used

    def _test(self, events: list[Event], times: list[int], t: int) -> bool:
        if self.func in (a.AggregateFunc.TOTAL, a.AggregateFunc.AVERAGE):
            numbers = [e.data[self.prop] for e in self._used(events, times, t)]
            mean = self.func is a.AggregateFunc.AVERAGE
            return sum_compares(numbers, mean, self.op, self.value)
        return compare(self._aggregate(events, times, t)[0], self.op, self.value)

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        events, times = self._events(ctx)
        value = self._test(events, times, t)
        return value, next_flip(
            value,
            _window_instants(times, t, self.window),
            lambda i: self._test(events, times, i),
            t,
        )

    def explain(self, ctx: Context, t: int) -> Explanation:
        events, times = self._events(ctx)
        value, nxt = self.evaluate(ctx, t)
        aggregate, used = self._aggregate(events, times, t)
        return Explanation(
            "aggregate",
            format_rule(self.node),
            value,
            nxt,
            {
                "event_type": self.selector.type,
                "function": self.func.value,
                "property": self.prop,
                "aggregate": aggregate,
                "count": len(used),
                "events": _evidence(used),
                **_window_details(t, self.window),
            },
        )


class RecencyNode(_EventLeaf):
    def __init__(self, node: a.Recency) -> None:
        super().__init__(node, node.event)
        self.n = node.duration.ms
        self.first = node.which is a.Which.FIRST
        self.within = node.op is a.RecencyOp.WITHIN

    def _anchor(self, events: list[Event], times: list[int], t: int) -> Event | None:
        """The first or last event up to t."""
        hi = bisect.bisect_right(times, t)
        if not hi:
            return None
        return events[0] if self.first else events[hi - 1]

    def _test(self, events: list[Event], times: list[int], t: int) -> bool:
        anchor = self._anchor(events, times, t)
        if anchor is None:
            return False
        o = anchor.occurred_at
        return o > t - self.n if self.within else o <= t - self.n

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        events, times = self._events(ctx)
        if times and times[-1] > t:  # events dated after t: step through what happens
            value = self._test(events, times, t)
            return value, next_flip(
                value,
                _window_instants(times, t, self.n),
                lambda i: self._test(events, times, i),
                t,
            )
        if not times:
            return False, None
        # Nothing will arrive: the anchor stays; only crossing anchor + n can flip the value.
        anchor = times[0] if self.first else times[-1]
        recent = anchor > t - self.n
        value = recent if self.within else not recent
        return value, anchor + self.n if recent else None

    def explain(self, ctx: Context, t: int) -> Explanation:
        events, times = self._events(ctx)
        value, nxt = self.evaluate(ctx, t)
        anchor = self._anchor(events, times, t)
        return Explanation(
            "recency",
            format_rule(self.node),
            value,
            nxt,
            {
                "event_type": self.selector.type,
                "which": "first" if self.first else "last",
                "threshold": t - self.n,
                "events": _evidence([anchor] if anchor else []),
            },
        )


# ---- leaves over the contact ----


class PropertyNode:
    def __init__(self, node: a.Condition) -> None:
        self.node = node
        self.prop: str = node.prop  # type: ignore[union-attr]
        self.test = compile_value_test(node)
        self.ago = node.duration.ms if isinstance(node, a.Ago) else None

    def _test(self, ctx: Context, t: int) -> bool:
        assigned = ctx.history.property_at(self.prop, t)
        return self.test(None if assigned is None else assigned.value, t)

    def _instants(self, ctx: Context, t: int) -> list[int]:
        values, times = ctx.history.property_values(self.prop)
        instants = set(times[bisect.bisect_right(times, t) :])
        if self.ago is not None:
            for pv in values:
                moment = instant_of(pv.value)
                if moment is not None:
                    instants.update((moment, moment + self.ago))
        return sorted(i for i in instants if i > t)

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        values, times = ctx.history.property_values(self.prop)
        if times and times[-1] > t:  # assignments dated after t
            value = self._test(ctx, t)
            return value, next_flip(value, self._instants(ctx, t), lambda i: self._test(ctx, i), t)
        current = values[-1].value if values else None
        value = self.test(current, t)
        if self.ago is None:
            return value, None
        moment = instant_of(current)
        if moment is None:
            return value, None
        for instant in (moment, moment + self.ago):
            if instant > t and self.test(current, instant) != value:
                return value, instant
        return value, None

    def explain(self, ctx: Context, t: int) -> Explanation:
        value, nxt = self.evaluate(ctx, t)
        assigned = ctx.history.property_at(self.prop, t)
        return Explanation(
            "property",
            format_rule(self.node),
            value,
            nxt,
            {
                "property": self.prop,
                "value": None if assigned is None else assigned.value,
                "set_by": None
                if assigned is None
                else {
                    "event_id": assigned.event_id,
                    "position": assigned.position,
                    "occurred_at": assigned.occurred_at,
                },
            },
        )


class SegmentNode:
    def __init__(self, node: a.InSegment, segment_id: str) -> None:
        self.node = node
        self.segment_id = segment_id

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        if ctx.segments is None:
            raise LookupError(f"no segment membership available for {self.segment_id!r}")
        return ctx.segments.membership(self.segment_id, t)

    def explain(self, ctx: Context, t: int) -> Explanation:
        value, nxt = self.evaluate(ctx, t)
        inner = ctx.segments.explain(self.segment_id, t)  # type: ignore[union-attr]
        return Explanation(
            "segment", format_rule(self.node), value, nxt, {"segment_id": self.segment_id}, (inner,)
        )


# ---- logic ----


class NotNode:
    def __init__(self, node: a.Not, item: Node) -> None:
        self.node = node
        self.item = item

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        value, nxt = self.item.evaluate(ctx, t)
        return not value, nxt

    def explain(self, ctx: Context, t: int) -> Explanation:
        inner = self.item.explain(ctx, t)
        return Explanation(
            "not", format_rule(self.node), not inner.value, inner.next_change, {}, (inner,)
        )


class AndNode:
    """All must hold. True: it changes when any child does. False: not before every false
    child has changed."""

    kind = "and"
    conjunction = True

    def __init__(self, node: a.And | a.Or, items: list[Node]) -> None:
        self.node = node
        self.items = items

    def _combine(self, outcomes: list[Outcome]) -> Outcome:
        value = all(v for v, _ in outcomes) if self.conjunction else any(v for v, _ in outcomes)
        if value == self.conjunction:
            return value, earliest(*(n for _, n in outcomes))
        return value, _all_must_change(n for v, n in outcomes if v != self.conjunction)

    def evaluate(self, ctx: Context, t: int) -> Outcome:
        return self._combine([item.evaluate(ctx, t) for item in self.items])

    def explain(self, ctx: Context, t: int) -> Explanation:
        children = tuple(item.explain(ctx, t) for item in self.items)
        value, nxt = self._combine([(c.value, c.next_change) for c in children])
        return Explanation(self.kind, format_rule(self.node), value, nxt, {}, children)


class OrNode(AndNode):
    """One must hold. False: it changes when any child does. True: not before every true
    child has changed."""

    kind = "or"
    conjunction = False


# ---- compilation ----


def compile_rule(rule: a.Condition, resolve: Callable[[str], str] = lambda ref: ref) -> Node:
    """An evaluator for a rule; `resolve` maps a segment name or id as written to an id."""
    if isinstance(rule, a.EventCount):
        return EventCountNode(rule)
    if isinstance(rule, a.Aggregate):
        return AggregateNode(rule)
    if isinstance(rule, a.Recency):
        return RecencyNode(rule)
    if isinstance(rule, a.InSegment):
        return SegmentNode(rule, resolve(rule.segment))
    if isinstance(rule, a.Not):
        return NotNode(rule, compile_rule(rule.item, resolve))
    if isinstance(rule, a.And):
        return AndNode(rule, [compile_rule(i, resolve) for i in rule.items])
    if isinstance(rule, a.Or):
        return OrNode(rule, [compile_rule(i, resolve) for i in rule.items])
    return PropertyNode(rule)


def evaluate_member(node: Node, ctx: Context, t: int) -> Outcome:
    """Membership by a rule: the contact must exist at t (an event with occurred_at <= t)."""
    start = ctx.history.exists_from()
    if start is None:
        return False, None
    if start > t:
        # Until it exists the contact is out; from then on the rule alone decides.
        value, nxt = node.evaluate(ctx, start)
        return False, start if value else nxt
    return node.evaluate(ctx, t)


def explain_member(node: Node, ctx: Context, t: int) -> Explanation:
    """The explanation of membership by a rule, existence included."""
    start = ctx.history.exists_from()
    exists = start is not None and start <= t
    rule = node.explain(ctx, t)
    value, nxt = evaluate_member(node, ctx, t)
    return Explanation(
        "membership",
        rule.text,
        value,
        nxt,
        {"contact_exists": exists, "exists_from": start},
        (rule,),
    )
