"""The leaves of a rule as step functions of time, for every contact at once.

Each leaf of RULES.md is rewritten as counts of events that are "active" on an interval of
time (an event counts from the instant it is both dated and known, `max(occurred_at,
recorded_at)`; a window ends it at `occurred_at + N`):

    X [count] within N           count of X active on [seen, occurred + N)  passes the count
    X [count]                    count of X active on [seen, forever)       passes the count
    last X within N              X within N
    last X more than N ago       some X, and none within N
    first X within N             some X, and no old X (old: active on [max(recorded,
                                 occurred + N), forever))
    first X more than N ago      some old X
    total / average              running sums of the amounts, checked exactly near the threshold
    properties                   the latest assignment seen, tested once per distinct value

Minimum and maximum fall back to the per-contact evaluator (engine.evaluate) for the
contacts that have such events. Event filters and value tests are engine.evaluate's own
functions, applied once per distinct value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.evaluate import COUNT_TESTS, Context, compile_filter, compile_rule, compile_value_test
from engine.history import CONTACT_UPDATED, Event, History
from engine.timeline_log import MISSING, Events, Fields, FieldValues
from engine.timeline_steps import (
    INT,
    Axis,
    Steps,
    first_of_runs,
    grid,
    last_of_runs,
    segmented_cumsum,
)
from engine.values import average, compare, instant_of, is_number, total
from grammar import ast as a
from grammar.formatter import format_rule

ALL, WINDOW = "all", "window"
EPSILON = sys.float_info.epsilon
EXACT_FLOAT = 2**53  # integers beyond this lose digits as floats: such amounts fall back


def filter_properties(cond: a.Condition | None) -> set[str]:
    """The event properties a `where` filter reads."""
    if cond is None:
        return set()
    if isinstance(cond, a.Not):
        return filter_properties(cond.item)
    if isinstance(cond, a.And | a.Or):
        return set().union(*(filter_properties(c) for c in cond.items))
    return {cond.prop}  # type: ignore[union-attr]


@dataclass(frozen=True)
class Counter:
    """Events active from `start` (until `end`, if any), per row of a selection."""

    contact: np.ndarray
    start: np.ndarray
    end: np.ndarray | None = None
    weight: np.ndarray | None = None


def leaf_key(node: a.Condition) -> str:
    """What a leaf means, as a key: its canonical text. Nodes are equal across `true` and 1
    (True == 1 in Python), which a rule tells apart."""
    return format_rule(node)


class Leaves:
    """Step functions of leaves, computed once per distinct leaf."""

    def __init__(
        self, axis: Axis, events: Events, fields: Fields, contact_properties: Iterable[str]
    ) -> None:
        self.axis = axis
        self.events = events
        self.fields = fields
        self.contact_properties = tuple(sorted(contact_properties))
        self._cache: dict[str, Steps] = {}

    def steps(self, node: a.Condition) -> Steps:
        """The leaf's value for every contact over all time."""
        key = leaf_key(node)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(node)
            self._cache[key] = found
        return found

    def forget(self, node: a.Condition) -> None:
        """Drop a leaf that nothing will ask for again."""
        self._cache.pop(leaf_key(node), None)

    def _compute(self, node: a.Condition) -> Steps:
        if isinstance(node, a.EventCount):
            return self._event_count(node)
        if isinstance(node, a.Recency):
            return self._recency(node)
        if isinstance(node, a.Aggregate):
            if node.func in (a.AggregateFunc.TOTAL, a.AggregateFunc.AVERAGE):
                return self._sums(node)
            return self.fallback(node)
        if isinstance(node, a.PROPERTY_CONDITIONS):
            return self._property(node)
        raise TypeError(f"not a leaf: {type(node).__name__}")

    # ---- selections ----

    def _selected(
        self, selector: a.EventSelector, more: Iterable[str] = ()
    ) -> tuple[np.ndarray, FieldValues | None]:
        """Rows of the events a selector reads (and the fields asked for, if any)."""
        names = filter_properties(selector.filter) | set(more)
        if not names:
            return self.events.of_type(selector.type), None
        found = self.fields.read(selector.type, names)
        rows = found.rows
        if selector.filter is not None:
            passes = _test_rows(compile_filter(selector.filter), found, sorted(names))
            rows = rows[passes]
        return rows, found

    # ---- counts ----

    def _event_count(self, node: a.EventCount) -> Steps:
        rows, _ = self._selected(node.event)
        op, k = node.count.op, node.count.n
        test = COUNT_TESTS[op]
        if node.window is None:
            return self._count_seen(rows, lambda c: test(c, k), test(0, k))
        width = node.window.ms
        # "At least once" (or its negation) is the union of the events' windows.
        if (op, k) in ((a.CountOp.AT_LEAST, 1), (a.CountOp.MORE_THAN, 0)):
            return self._any_within(rows, width)
        if (op, k) in ((a.CountOp.EXACTLY, 0), (a.CountOp.AT_MOST, 0), (a.CountOp.FEWER_THAN, 1)):
            return self._any_within(rows, width).negate()
        return self._count_within(rows, width, lambda c: test(c, k), test(0, k))

    def _recency(self, node: a.Recency) -> Steps:
        rows, _ = self._selected(node.event)
        n = node.duration.ms
        last, within = node.which is a.Which.LAST, node.op is a.RecencyOp.WITHIN
        e = self.events
        if last and within:
            return self._any_within(rows, n)
        # Each column of the selection is taken when needed and let go: for `last activity`
        # the selection is the whole log, and this leaf set the replay's peak memory.
        if last:  # some such event, and none within N
            some = self._first(rows, np.maximum(e.occurred[rows], e.recorded[rows]))
            return self._both(some, self._any_within(rows, n).negate())
        # An event is "old" from when it is known and dated N ago: the first one is then old.
        old = self._first(rows, np.maximum(e.recorded[rows], e.occurred[rows] + n))
        if within:  # some such event, and none old
            some = self._first(rows, np.maximum(e.occurred[rows], e.recorded[rows]))
            return self._both(some, old.negate())
        return old

    def _first(self, rows: np.ndarray, t: np.ndarray) -> Steps:
        """True from each contact's earliest instant among `t` (one per row) on."""
        contact = self.events.contact[rows]
        if not len(rows):
            return Steps.constant(False)
        starts = first_of_runs(contact)  # rows are in contact order
        earliest = np.minimum.reduceat(t, starts)
        keys = self.axis.key(contact[starts], earliest)
        return Steps(keys, np.ones(len(keys), bool), False)

    def _both(self, left: Steps, right: Steps) -> Steps:
        instants = grid([left.keys, right.keys])
        vals = left.at(self.axis, instants) & right.at(self.axis, instants)
        return Steps(instants, vals, left.init and right.init).changes(self.axis)

    def _seen_keys(self, rows: np.ndarray) -> np.ndarray:
        """Sorted keys of the instants the events are seen (nearly sorted already)."""
        e = self.events
        keys = self.axis.key(e.contact[rows], np.maximum(e.occurred[rows], e.recorded[rows]))
        return np.sort(keys, kind="stable")

    def _count_seen(self, rows: np.ndarray, test: Callable[[Any], Any], init: bool) -> Steps:
        """A count over all time: after a contact's i-th event is seen, the count is i."""
        keys = self._seen_keys(rows)
        if not len(keys):
            return Steps.constant(init)
        contact = keys >> self.axis.shift
        starts = first_of_runs(contact)
        lengths = np.diff(np.append(starts, len(keys)))
        count = np.arange(1, len(keys) + 1) - np.repeat(starts, lengths)
        ends = last_of_runs(keys)
        return Steps(keys[ends], np.asarray(test(count[ends]), bool), init).changes(self.axis)

    def _windows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each event's window [seen, occurred + n) as keys; a late event whose window closed
        before it was known never counts."""
        e = self.events
        end = e.occurred[rows]
        seen = np.maximum(end, e.recorded[rows])
        end += n
        contact = e.contact[rows]
        ok = seen < end
        if not ok.all():
            contact, seen, end = contact[ok], seen[ok], end[ok]
        del ok
        starts = self.axis.key(contact, seen)
        del seen
        return starts, self.axis.key(contact, end)

    def _any_within(self, rows: np.ndarray, n: int) -> Steps:
        """Some event within n: the union of the windows, contact by contact."""
        starts, ends = self._windows(rows, n)
        if not len(starts):
            return Steps.constant(False)
        if (starts[1:] < starts[:-1]).any():  # late events seen after later-dated ones
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
            del order
        # Keys of later contacts are larger, so a running maximum never leaks across them.
        reach = np.maximum.accumulate(ends, out=ends)  # in place: one column fewer at once
        del ends
        opens = np.empty(len(starts), bool)
        opens[0] = True
        np.greater(starts[1:], reach[:-1], out=opens[1:])
        first = np.flatnonzero(opens)
        last = np.append(first[1:] - 1, len(starts) - 1)
        keys = np.empty(2 * len(first), INT)
        keys[0::2], keys[1::2] = starts[first], reach[last]
        vals = np.zeros(len(keys), bool)
        vals[0::2] = True
        return Steps(keys, vals, False)

    def _count_within(
        self, rows: np.ndarray, n: int, test: Callable[[Any], Any], init: bool
    ) -> Steps:
        """A count within n: +1 when an event is seen, -1 when its window ends."""
        starts, ends = self._windows(rows, n)
        keys = np.concatenate([starts, ends])
        sign = np.concatenate([np.ones(len(starts), np.int8), -np.ones(len(ends), np.int8)])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        # Every window ends, so each contact's changes sum to zero: one running sum serves all.
        count = np.cumsum(sign[order], dtype=np.int32)
        ends_of_runs = last_of_runs(keys)
        vals = np.asarray(test(count[ends_of_runs]), bool)
        return Steps(keys[ends_of_runs], vals, init).changes(self.axis)

    def _counter(self, rows: np.ndarray, spec: str, n: int | None) -> tuple[Counter, np.ndarray]:
        """The counter of a selection, and which of its rows ever count."""
        e = self.events
        contact, occurred, recorded = e.contact[rows], e.occurred[rows], e.recorded[rows]
        seen = np.maximum(occurred, recorded)
        if spec == ALL:
            return Counter(contact, seen), np.ones(len(rows), bool)
        assert n is not None
        # A late event whose window closed before it was recorded never counts.
        ok = seen < occurred + n
        return Counter(contact[ok], seen[ok], (occurred + n)[ok]), ok

    # ---- total and average ----

    def _sums(self, node: a.Aggregate) -> Steps:
        rows, found = self._selected(node.event, [node.prop])
        assert found is not None
        ids = found.ids[node.prop][np.searchsorted(found.rows, rows)]
        numbers, exact = _numbers(found, ids)
        if not exact:
            return self.fallback(node)
        use = ~np.isnan(numbers)
        rows, numbers = rows[use], numbers[use]
        spec = ALL if node.window is None else WINDOW
        width = None if node.window is None else node.window.ms
        base, counted = self._counter(rows, spec, width)
        rows, x = rows[counted], numbers[counted]
        counters = [
            base,
            Counter(base.contact, base.start, base.end, x),
            Counter(base.contact, base.start, base.end, np.abs(x)),
        ]
        keys, (count, amounts, magnitude) = _deltas(self.axis, counters)
        contact = keys >> self.axis.shift
        count = segmented_cumsum(count, contact)
        ends = last_of_runs(keys)
        mean = node.func is a.AggregateFunc.AVERAGE
        # Sums past a double (amounts near 1e308) become infinite or NaN: doubtful, and
        # worked out exactly below, not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            sums, bound = _sum_with_bound(amounts, contact)
            magnitude = segmented_cumsum(magnitude, contact)
            count, sums, bound, magnitude = count[ends], sums[ends], bound[ends], magnitude[ends]
            # Python's own running sum may differ from the exact one by count * eps * magnitude.
            band = 2 * (bound + count * EPSILON * magnitude) + 1e-300
            vals, doubtful = _compare_sums(node, count, sums, band, mean)
        keys = keys[ends]
        if doubtful.any():
            check = _ExactCheck(self.events, rows, found, node)
            contacts, times = self.axis.contact(keys), self.axis.time(keys)
            for i in np.flatnonzero(doubtful).tolist():
                vals[i] = check(int(contacts[i]), int(times[i]))
        init = compare(None if mean else 0, node.op, node.value)
        return Steps(keys, vals, init).changes(self.axis)

    # ---- properties ----

    def _property(self, node: a.Condition) -> Steps:
        prop: str = node.prop  # type: ignore[union-attr]
        found = self.fields.read(CONTACT_UPDATED, self.contact_properties or (prop,))
        ids = found.ids[prop]
        present = ids != MISSING
        rows, ids = found.rows[present], ids[present]
        e = self.events
        keys = self.axis.key(e.contact[rows], np.maximum(e.occurred[rows], e.recorded[rows]))
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        # The value in force is the assignment latest by (occurred_at, position) among those
        # seen: rows are numbered in that order, so it is the running maximum of row numbers.
        best = np.maximum.accumulate(rows[order])
        ends = last_of_runs(keys)
        pieces = Steps(keys[ends], ids[np.searchsorted(rows, best[ends])], MISSING)
        test = compile_value_test(node)
        if isinstance(node, a.Ago):
            return self._ago(node, pieces, found)
        distinct, inverse = np.unique(pieces.vals, return_inverse=True)
        table = np.array([test(found.value(v), None) for v in distinct.tolist()], bool)
        return Steps(pieces.keys, table[inverse], test(None, None)).changes(self.axis)

    def _ago(self, node: a.Ago, pieces: Steps, found: FieldValues) -> Steps:
        """`<date property> more/less than N ago`: true from `value + N` / on [value, value + N)."""
        n = node.duration.ms
        # MISSING is among the values: it is the value before a contact's first assignment.
        distinct, inverse = np.unique(np.append(pieces.vals, MISSING), return_inverse=True)
        inverse = inverse[:-1]
        moments = [instant_of(found.value(v)) for v in distinct.tolist()]
        known = np.array([m is not None for m in moments], bool)
        instant = np.array([m or 0 for m in moments], INT)
        has = known[inverse]
        contact = self.axis.contact(pieces.keys[has])
        m = instant[inverse][has]
        grid_keys = grid(
            [
                pieces.keys,
                np.sort(self.axis.key(contact, m)),
                np.sort(self.axis.key(contact, m + n)),
            ]
        )
        at = np.searchsorted(distinct, pieces.at(self.axis, grid_keys))
        t = self.axis.time(grid_keys)
        moment, ok = instant[at], known[at]
        if node.op is a.AgoOp.MORE_THAN:
            vals = ok & (moment <= t - n)
        else:
            vals = ok & (t - n < moment) & (moment <= t)
        return Steps(grid_keys, vals, False).changes(self.axis)

    # ---- the per-contact evaluator, for what has no set-wise form ----

    def fallback(self, node: a.Condition) -> Steps:
        """A leaf over events, by engine.evaluate, for each contact that has such events."""
        selector: a.EventSelector = node.event  # type: ignore[union-attr]
        names = filter_properties(selector.filter)
        if isinstance(node, a.Aggregate):
            names.add(node.prop)
        rows = self.events.of_type(selector.type)
        found = self.fields.read(selector.type, names) if names else None
        evaluator = compile_rule(node)
        init, _ = evaluator.evaluate(Context(History()), self.axis.origin)
        keys: list[int] = []
        vals: list[bool] = []
        e = self.events
        bounds = np.flatnonzero(np.diff(e.contact[rows])) + 1
        for group in np.split(rows, bounds) if len(rows) else []:
            in_log_order = group[np.argsort(e.position[group])].tolist()
            contact = int(e.contact[group[0]])
            for t, value in _walk(evaluator, [self._event(r, found) for r in in_log_order]):
                keys.append(int(self.axis.key(np.array([contact]), t)[0]))
                vals.append(value)
        steps = Steps(np.array(keys, INT), np.array(vals, bool), init)
        return steps.changes(self.axis)

    def _event(self, row: int, found: FieldValues | None) -> Event:
        e = self.events
        data: dict[str, Any] = {}
        if found is not None:
            i = int(np.searchsorted(found.rows, row))
            for name, ids in found.ids.items():
                if ids[i] != MISSING:
                    data[name] = found.value(int(ids[i]))
        return Event(
            int(e.position[row]),
            "",
            e.types[int(e.type[row])],
            int(e.occurred[row]),
            int(e.recorded[row]),
            data,
        )


def _walk(evaluator: Any, events: list[Event]) -> Iterable[tuple[int, bool]]:
    """(instant, value) at every instant a leaf's value may change, for one contact."""
    history = History()
    instants = sorted({e.recorded_at for e in events})
    for i, r in enumerate(instants):
        history.add([e for e in events if e.recorded_at == r])
        upto = instants[i + 1] if i + 1 < len(instants) else None
        t: int | None = r
        ctx = Context(history)
        while t is not None and (upto is None or t < upto):
            value, nxt = evaluator.evaluate(ctx, t)
            yield t, value
            t = nxt


def _deltas(axis: Axis, counters: Sequence[Counter]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The counters' +weight at each start and -weight at each end, sorted by key: one
    array of keys, and one array of changes per counter (zero where another one changes)."""
    keys: list[np.ndarray] = []
    blocks: list[tuple[int, np.ndarray]] = []
    for j, c in enumerate(counters):
        weight = np.ones(len(c.start), INT) if c.weight is None else c.weight
        keys.append(axis.key(c.contact, c.start))
        blocks.append((j, weight))
        if c.end is not None:
            keys.append(axis.key(c.contact, c.end))
            blocks.append((j, -weight))
    every = np.concatenate(keys) if keys else np.empty(0, INT)
    order = np.argsort(every, kind="stable")
    place = np.empty(len(order), INT)
    place[order] = np.arange(len(order))
    deltas = [np.zeros(len(order), INT if c.weight is None else c.weight.dtype) for c in counters]
    offset = 0
    for j, weight in blocks:
        deltas[j][place[offset : offset + len(weight)]] = weight
        offset += len(weight)
    return every[order], deltas


def _sum_with_bound(deltas: np.ndarray, contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running sums per contact, and a bound on their rounding error (to first order, the
    error of a running float sum is at most eps times the sum of the partial sums' sizes)."""
    total = np.cumsum(deltas)
    size = np.cumsum(np.abs(total)) * EPSILON
    if not len(deltas):
        return total, size
    starts = np.append(0, np.flatnonzero(contact[1:] != contact[:-1]) + 1)
    lengths = np.diff(np.append(starts, len(deltas)))
    before = np.repeat(total[starts] - deltas[starts], lengths)
    before_size = np.repeat(size[starts], lengths)
    sums = total - before
    return sums, size + before_size + np.abs(sums) * EPSILON


def _compare_sums(
    node: a.Aggregate, count: np.ndarray, sums: np.ndarray, band: np.ndarray, mean: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The comparison per row, and the rows too close to call with floats."""
    target = node.value
    if isinstance(target, bool) or not is_number(target):
        # A number never compares with anything else: only `!=` holds.
        vals = np.full(len(sums), node.op is a.CompareOp.NE)
        return vals, np.zeros(len(sums), bool)
    if mean:
        empty = count == 0
        scaled = np.where(empty, 0.0, target * count.astype(float))
        diff = sums - scaled
        band = band + 4 * EPSILON * np.abs(scaled)
    else:
        empty = np.zeros(len(sums), bool)
        diff = sums - target
    ops = {
        a.CompareOp.EQ: diff == 0,
        a.CompareOp.NE: diff != 0,
        a.CompareOp.GT: diff > 0,
        a.CompareOp.GE: diff >= 0,
        a.CompareOp.LT: diff < 0,
        a.CompareOp.LE: diff <= 0,
    }
    vals = ops[node.op].copy()
    vals[empty] = compare(None, node.op, target)
    # NaN (a running sum past a double, less another) is doubtful too.
    doubtful = ~empty & ~(np.abs(diff) > band)
    return vals, doubtful


class _ExactCheck:
    """The aggregate of one contact at one instant, exactly as engine.evaluate computes it."""

    def __init__(
        self, events: Events, rows: np.ndarray, found: FieldValues, node: a.Aggregate
    ) -> None:
        self.events = events
        self.rows = rows
        self.found = found
        self.node = node
        self.ids = found.ids[node.prop]
        self.contacts = events.contact[rows]

    def __call__(self, contact: int, t: int) -> bool:
        e, node = self.events, self.node
        lo, hi = np.searchsorted(self.contacts, [contact, contact + 1])
        numbers = []
        for row in self.rows[lo:hi].tolist():  # by (occurred_at, position), as the evaluator
            o, r = int(e.occurred[row]), int(e.recorded[row])
            if max(o, r) > t or (node.window is not None and o <= t - node.window.ms):
                continue
            value = self.found.value(int(self.ids[np.searchsorted(self.found.rows, row)]))
            numbers.append(value)
        result = total(numbers) if node.func is a.AggregateFunc.TOTAL else average(numbers)
        return compare(result, node.op, node.value)


def _numbers(found: FieldValues, ids: np.ndarray) -> tuple[np.ndarray, bool]:
    """Each id's value as a float (NaN if not a number); False if one would lose digits."""
    distinct, inverse = np.unique(ids, return_inverse=True)
    table = np.full(len(distinct), np.nan)
    for i, v in enumerate(distinct.tolist()):
        value = found.value(v)
        if is_number(value):
            if isinstance(value, int) and abs(value) > EXACT_FLOAT:
                return table, False
            table[i] = float(value)
    return table[inverse], True


def _test_rows(
    test: Callable[[dict[str, Any]], bool], found: FieldValues, names: list[str]
) -> np.ndarray:
    """A filter's verdict per row, computed once per distinct combination of values."""
    stacked = np.stack([found.ids[n] for n in names], axis=1)
    distinct, inverse = np.unique(stacked, axis=0, return_inverse=True)
    verdicts = np.array(
        [
            test({n: found.value(i) for n, i in zip(names, combo, strict=True) if i != MISSING})
            for combo in distinct.tolist()
        ],
        bool,
    )
    return verdicts[inverse.reshape(-1)] if len(verdicts) else np.zeros(len(found.rows), bool)
