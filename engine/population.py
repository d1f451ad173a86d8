"""Set-wise evaluation: a rule for every contact at once, at one instant.

The per-contact evaluator (engine/evaluate.py) defines the meaning; this module reaches the
same answers by asking the log a few set-wise questions (eventstore/population.py) and
combining contact sets. It also gives, per contact, a lower bound on the next instant the
answer can change (conservative: every instant at which any leaf could change), which the
projector uses as a first deadline; the per-contact evaluator sharpens it when it fires.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol

from engine.evaluate import COUNT_TESTS, compile_filter, compile_value_test
from engine.values import compare, decode_json, fold, instant_of, is_number, sum_compares
from eventstore.population import EventRange, EventRow, PopulationQueries
from eventstore.projection import ContactReads
from grammar import ast as a

Bounds = dict[str, int]
# Rows of events read for one clause that a SetEvaluator keeps for the next clause reading the
# same range, at most: about 80 MB (`activity` would be every event).
EVENTS_KEPT = 200_000


@dataclass
class Answer:
    """Who satisfies a condition, and when each may change. The members exist at the instant
    asked, unless `all_exist` is false (a static list's edits need no events)."""

    members: set[str]
    bounds: Bounds = field(default_factory=dict)
    all_exist: bool = True


class ContactsAt:
    """The contacts that exist at t, and those that start later: read when first needed (a
    rule made of event clauses only needs neither), then kept."""

    def __init__(self, starts: ContactReads, t: int) -> None:
        self.starts = starts
        self.t = t

    @cached_property
    def existing(self) -> set[str]:
        """Every contact with an event at or before t."""
        return self.starts.started_by(self.t)

    @cached_property
    def not_yet(self) -> Mapping[str, int]:
        """The contacts whose first event comes after t, with its instant."""
        return self.starts.first_events(self.t, None)


class SegmentSets(Protocol):
    """Members of another segment at the instant being evaluated."""

    def answer(self, segment_id: str) -> Answer:
        """The segment's members at that instant, and their deadlines."""
        ...


def _lower(bounds: Bounds, contact: str, instant: int) -> None:
    current = bounds.get(contact)
    if current is None or instant < current:
        bounds[contact] = instant


def _merge(answers: Iterable[Answer]) -> Bounds:
    merged: Bounds = {}
    for answer in answers:
        if not merged:
            merged = dict(answer.bounds)
            continue
        for contact, instant in answer.bounds.items():
            _lower(merged, contact, instant)
    return merged


# What our JSON writes escaped (it never escapes "/" or non-ASCII text).
_JSON_SPECIAL = set('"\\') | {chr(i) for i in range(32)}


def required_texts(cond: a.Condition | None) -> tuple[str, ...]:
    """Texts of which an event's raw JSON must contain one to pass a filter ((): no hint)."""
    if cond is None:
        return ()
    if isinstance(cond, a.TextMatch):
        texts: tuple[str, ...] = (cond.value,)
    elif isinstance(cond, a.Compare) and cond.op is a.CompareOp.EQ and isinstance(cond.value, str):
        texts = (cond.value,)
    elif (
        isinstance(cond, a.InList)
        and not cond.negated
        and all(isinstance(v, str) for v in cond.values)
    ):
        texts = tuple(str(v) for v in cond.values)
    elif isinstance(cond, a.And):
        hints = [required_texts(c) for c in cond.items]
        texts = min((h for h in hints if h), key=len, default=())
    elif isinstance(cond, a.Or):
        hints = [required_texts(c) for c in cond.items]
        texts = tuple(t for h in hints for t in h) if all(hints) else ()
    else:
        return ()
    # Folded, as the exact test compares them: "straße" must find "Strasse", which the
    # store's ASCII-only case folding finds by "strasse" (other characters pass it anyway).
    texts = tuple(fold(t) for t in texts)
    # Only texts that JSON writes as they are can be looked for in the raw data.
    if any(not t or _JSON_SPECIAL & set(t) for t in texts):
        return ()
    return texts


class SetEvaluator:
    """Evaluates rules for a whole population at the instant of `contacts`, over events up to a
    position.

    Every answer holds existing contacts only: those of event clauses and property values have
    an event at or before t by construction, so the set of every existing contact is read only
    for a complement (`not`, a test the unknown passes) that no positive clause bounds.
    """

    def __init__(
        self,
        queries: PopulationQueries,
        contacts: ContactsAt,
        max_position: int,
        segments: SegmentSets | None = None,
        *,
        bounds: bool = True,
        views: ContactReads | None = None,
    ) -> None:
        self.q = queries
        self.contacts = contacts
        self.t = contacts.t
        self.max_position = max_position
        self.segments = segments
        self.want_bounds = bounds
        self.views = views
        self._types: tuple[str, ...] | None = None
        self._references: Mapping[str, str] = {}
        # Per property, what its clauses read, read once for them all (a property may take a
        # value per contact, and a rule fifty clauses on it).
        self._values_of: dict[str, _PropertyValues] = {}
        self._groups_of: dict[str, list[tuple[Any, list[str]]]] = {}
        self._moments_of: dict[str, list[tuple[int, list[str]]]] = {}
        self._changes_of: dict[str, list[tuple[str, int]]] = {}
        self._events_kept: dict[EventRange, list[EventRow]] = {}
        self._events_room = EVENTS_KEPT

    # ---- entry points ----

    def members(self, rule: a.Condition, references: Mapping[str, str] | None = None) -> Answer:
        """Membership by a rule: the contact exists at t and the rule holds.

        `references` maps segment names as the rule writes them to segment ids.
        """
        self._references = references or {}
        answer = self.evaluate(rule)
        if self.want_bounds:
            for contact, start in self.contacts.not_yet.items():
                _lower(answer.bounds, contact, start)
        return answer

    @property
    def existing(self) -> set[str]:
        """Every contact that exists at t."""
        return self.contacts.existing

    def evaluate(self, node: a.Condition) -> Answer:
        """Who among the existing contacts satisfies a condition at t."""
        if isinstance(node, a.Not):
            inner = self.evaluate(node.item)
            return Answer(self.existing - inner.members, inner.bounds)
        if isinstance(node, a.And):
            return self._and(node.items)
        if isinstance(node, a.Or):
            parts = [self.evaluate(item) for item in node.items]
            return Answer(set.union(*(p.members for p in parts)), _merge(parts))
        if isinstance(node, a.InSegment):
            if self.segments is None:
                raise LookupError("no segment sets to evaluate `in segment`")
            found = self.segments.answer(self._references.get(node.segment, node.segment))
            if found.all_exist:
                return found
            return Answer(found.members & self.existing, found.bounds)
        if isinstance(node, a.EventCount):
            return self._event_count(node)
        if isinstance(node, a.Aggregate):
            return self._aggregate(node)
        if isinstance(node, a.Recency):
            return self._recency(node)
        return self._property(node)

    def _and(self, items: tuple[a.Condition, ...]) -> Answer:
        # P and not N is P minus N: the complement of N is never built when P bounds it.
        negated = [item.item for item in items if isinstance(item, a.Not)]
        plain = [item for item in items if not isinstance(item, a.Not)]
        if not plain:
            parts = [self.evaluate(item) for item in items]
            return Answer(set.intersection(*(p.members for p in parts)), _merge(parts))
        kept = [self.evaluate(item) for item in plain]
        dropped = [self.evaluate(item) for item in negated]
        members = set.intersection(*(p.members for p in kept))
        members.difference_update(*(p.members for p in dropped))
        return Answer(members, _merge(kept + dropped))

    # ---- events ----

    def _range(self, selector: a.EventSelector, after: int | None, until: int | None) -> EventRange:
        types = self._all_types() if selector.type is None else (selector.type,)
        return EventRange(types, after, until, self.max_position, required_texts(selector.filter))

    def _events(self, query: EventRange) -> Iterator[EventRow]:
        """The events of a range, as the log gives them; kept, up to EVENTS_KEPT rows in all,
        for the next clause that reads the same range (ten aggregates of purchases with
        other filters read them once, not ten times: a second each on the 5M-event log)."""
        kept = self._events_kept.get(query)
        if kept is not None:
            yield from kept
            return
        found: list[EventRow] | None = [] if not query.contains else None
        for row in self.q.events(query):
            if found is not None:
                found.append(row)
                if len(found) > self._events_room:
                    found = None  # too many to keep: read again if asked again
            yield row
        if found is not None:
            self._events_kept[query] = found
            self._events_room -= len(found)

    def _all_types(self) -> tuple[str, ...]:
        if self._types is None:
            self._types = tuple(self.q.event_types())
        return self._types

    def _per_contact(
        self, selector: a.EventSelector, after: int | None, until: int | None
    ) -> dict[str, list[Any]]:
        """Per contact: [count, first instant, last instant] of matching events in a range."""
        query = self._range(selector, after, until)
        found: dict[str, list[Any]] = {}
        if selector.filter is None:
            for row in self.q.count_events(query):
                found[row.contact_id] = [row.count, row.first, row.last]
            return found
        matches = compile_filter(selector.filter)
        for event in self._events(query):
            if not matches(event.data):
                continue
            entry = found.get(event.contact_id)
            if entry is None:
                found[event.contact_id] = [1, event.occurred_at, event.occurred_at]
            else:
                entry[0] += 1
                entry[1] = min(entry[1], event.occurred_at)
                entry[2] = max(entry[2], event.occurred_at)
        return found

    def _arrivals(self, selector: a.EventSelector, bounds: Bounds) -> None:
        """Matching events dated after t will change things when their time comes."""
        if self.want_bounds:
            for contact, (_, first, _) in self._per_contact(selector, self.t, None).items():
                _lower(bounds, contact, first)

    def _split(
        self, holds: Callable[[Any], bool], found: Mapping[str, Any], empty: Any
    ) -> set[str]:
        """Existing contacts for which `holds` is true, those absent from `found` given `empty`."""
        if holds(empty):
            return self.existing - {c for c, v in found.items() if not holds(v)}
        # `found` comes from events at or before t: its contacts exist.
        return {c for c, v in found.items() if holds(v)}

    def _event_count(self, node: a.EventCount) -> Answer:
        window = None if node.window is None else node.window.ms
        after = None if window is None else self.t - window
        found = self._per_contact(node.event, after, self.t)
        test, k = COUNT_TESTS[node.count.op], node.count.n
        members = self._split(lambda entry: test(entry[0], k), found, [0, None, None])
        bounds: Bounds = {}
        if self.want_bounds and window is not None:
            bounds = {c: first + window for c, (_, first, _) in found.items()}
        self._arrivals(node.event, bounds)
        return Answer(members, bounds)

    def _aggregate(self, node: a.Aggregate) -> Answer:
        window = None if node.window is None else node.window.ms
        after = None if window is None else self.t - window
        query = self._range(node.event, after, self.t)
        numbers: dict[str, list[float]] = {}
        firsts: dict[str, int] = {}
        for contact, occurred_at, value in self._amounts(node, query):
            _lower(firsts, contact, occurred_at)
            if is_number(value):
                numbers.setdefault(contact, []).append(value)

        def holds(values: list[float]) -> bool:
            if node.func is a.AggregateFunc.MINIMUM:
                return compare(min(values, default=None), node.op, node.value)
            if node.func is a.AggregateFunc.MAXIMUM:
                return compare(max(values, default=None), node.op, node.value)
            mean = node.func is a.AggregateFunc.AVERAGE
            return sum_compares(values, mean, node.op, node.value)

        members = self._split(holds, numbers, [])
        bounds: Bounds = {}
        if self.want_bounds and window is not None:
            bounds = {c: first + window for c, first in firsts.items()}
        self._arrivals(node.event, bounds)
        return Answer(members, bounds)

    def _amounts(self, node: a.Aggregate, query: EventRange) -> Iterable[tuple[str, int, Any]]:
        """(contact, occurred_at, the property's value) of the matching events."""
        if node.event.filter is None:
            return self.q.numbers(query, node.prop)  # the log extracts the property itself
        matches = compile_filter(node.event.filter)
        return (
            (e.contact_id, e.occurred_at, e.data.get(node.prop))
            for e in self._events(query)
            if matches(e.data)
        )

    def _recency(self, node: a.Recency) -> Answer:
        # Each member has a matching event at or before t: it exists.
        n, t = node.duration.ms, self.t
        bounds: Bounds = {}
        if node.which is a.Which.LAST and node.op is a.RecencyOp.WITHIN:
            recent = self._recent(node.event, t - n)
            members = set(recent)
            if self.want_bounds:
                bounds = {c: last + n for c, last in recent.items()}
        elif node.which is a.Which.LAST and not self.want_bounds:
            members = self._last_by(node.event, t - n)
        elif node.which is a.Which.LAST:
            recent = self._recent(node.event, t - n)
            members = self._older_than(node.event, t - n) - set(recent)
            bounds = {c: last + n for c, last in recent.items()}
        else:
            ever = self._first_instants(node.event)
            if node.op is a.RecencyOp.WITHIN:
                members = {c for c, first in ever.items() if first > t - n}
            else:
                members = {c for c, first in ever.items() if first <= t - n}
            if self.want_bounds:
                bounds = {c: first + n for c, first in ever.items() if first + n > t}
        self._arrivals(node.event, bounds)
        return Answer(members, bounds)

    def _recent(self, selector: a.EventSelector, after: int) -> dict[str, int]:
        """Per contact with matching events in (after, t]: the latest one's occurred_at."""
        if self.views is None or selector.type is not None or selector.filter is not None:
            per_contact = self._per_contact(selector, after, self.t)
            return {c: last for c, (_, _, last) in per_contact.items()}
        # Any event at all: the view's latest occurred_at answers, unless it lies after t.
        found = dict(self.views.last_events(after, self.t))
        found.update(self._latest_of_later(after))
        return found

    def _last_by(self, selector: a.EventSelector, until: int) -> set[str]:
        """The contacts whose latest matching event up to t occurred at or before `until`."""
        if self.views is None or selector.type is not None or selector.filter is not None:
            per_contact = self._per_contact(selector, None, self.t)
            return {c for c, (_, _, last) in per_contact.items() if last <= until}
        found = set(self.views.last_events(None, until))
        found.update(c for c, last in self._latest_of_later(None).items() if last <= until)
        return found

    def _latest_of_later(self, after: int | None) -> dict[str, int]:
        """For the contacts the view knows an event after t of: their latest event in
        (after, t], read from the log."""
        assert self.views is not None
        later = self.views.last_events(self.t, None)
        if not later:
            return {}
        query = replace(self._range(a.EventSelector(None), after, self.t), contacts=tuple(later))
        return {row.contact_id: row.last for row in self.q.count_events(query)}

    def _older_than(self, selector: a.EventSelector, until: int) -> set[str]:
        if selector.type is None and selector.filter is None:
            return self.contacts.starts.started_by(until)
        return set(self._per_contact(selector, None, until))

    def _first_instants(self, selector: a.EventSelector) -> dict[str, int]:
        if selector.type is None and selector.filter is None:
            return dict(self.contacts.starts.first_events(None, self.t))
        return {c: first for c, (_, first, _) in self._per_contact(selector, None, self.t).items()}

    # ---- properties ----

    def _values(self, prop: str) -> list[tuple[Any, list[str]]]:
        """The contacts with a value of a property at t, grouped by value (absent: never set;
        a value may come in several groups); read once for every clause on the property."""
        found = self._groups_of.get(prop)
        if found is not None:
            return found
        if self.views is None:
            rows = self.q.property_values(prop, self.t, self.max_position)
            found = [(value, [contact]) for contact, value in rows]
        else:
            found, later = self._property_values(prop).value_groups()
            if later:  # their latest value comes after t: the log has the one before
                rows = self.q.property_values(prop, self.t, self.max_position, later)
                found = found + [(value, [contact]) for contact, value in rows]
        self._groups_of[prop] = found
        return found

    def _moments(self, prop: str) -> list[tuple[int, list[str]]]:
        """The property's date values at t as instants, with their contacts (for `ago`)."""
        found = self._moments_of.get(prop)
        if found is None:
            found = self._moments_of[prop] = [
                (moment, contacts)
                for value, contacts in self._values(prop)
                if (moment := instant_of(value)) is not None
            ]
        return found

    def _property_values(self, prop: str) -> _PropertyValues:
        assert self.views is not None
        found = self._values_of.get(prop)
        if found is None:
            found = self._values_of[prop] = _PropertyValues(self.views, prop, self.t)
        return found

    def _viewed(self, node: a.Condition, holds: Callable[[Any], bool]) -> set[str]:
        """With the contact view: the existing contacts for which `holds` is true. Each
        distinct value is tested once (texts are looked up where the condition allows), then
        only the contacts of the values that decide are read (failing ones if the unknown
        passes, else passing ones)."""
        prop: str = node.prop  # type: ignore[attr-defined]
        values = self._property_values(prop)
        unknown = holds(None)
        chosen = values.deciding(node, holds, unknown)
        picked, later = values.holders(chosen)
        if later:  # their latest value comes after t: the log has the one before
            found = self.q.property_values(prop, self.t, self.max_position, later)
            picked += [contact for contact, value in found if holds(value) != unknown]
        # A value set at or before t: its contact exists.
        return self.existing.difference(picked) if unknown else set(picked)

    def _property(self, node: a.Condition) -> Answer:
        prop: str = node.prop  # type: ignore[union-attr]
        holds = _memoized(compile_value_test(node), self.t)
        ago_bounds = self.want_bounds and isinstance(node, a.Ago)
        groups: list[tuple[Any, list[str]]] = []
        if self.views is not None and not ago_bounds:
            members = self._viewed(node, holds)
        elif isinstance(node, a.Ago):  # on the instants, parsed once for every clause
            n, t = node.duration.ms, self.t
            more = node.op is a.AgoOp.MORE_THAN
            members = set(
                itertools.chain.from_iterable(
                    contacts
                    for moment, contacts in self._moments(prop)
                    if (moment <= t - n if more else t - n < moment <= t)
                )
            )
        else:
            groups = self._values(prop)
            if holds(None):  # the unknown passes: everyone but those whose value fails
                members = self.existing.difference(
                    *(contacts for value, contacts in groups if not holds(value))
                )
            else:  # a value set at or before t: its contact exists
                members = set(
                    itertools.chain.from_iterable(c for value, c in groups if holds(value))
                )
        bounds: Bounds = {}
        if self.want_bounds:
            for contact, instant in self._changes_after(prop):
                _lower(bounds, contact, instant)
            if isinstance(node, a.Ago):
                n = node.duration.ms
                for moment, contacts in self._moments(prop):
                    for instant in (moment, moment + n):
                        if instant > self.t:
                            for contact in contacts:
                                _lower(bounds, contact, instant)
        return Answer(members, bounds)

    def _changes_after(self, prop: str) -> list[tuple[str, int]]:
        found = self._changes_of.get(prop)
        if found is None:
            found = self._changes_of[prop] = list(
                self.q.property_changes_after(prop, self.t, self.max_position)
            )
        return found


class _PropertyValues:
    """A property's latest values at t in the contact view, read once for every clause on it.

    A property may take a value of its own per contact (a name, an email): fifty clauses on
    it read and decoded half a million values fifty times, and scanned the view fifty times
    for their contacts (10 s for one preview). Its values are read once; texts are looked up
    by their folded form, by prefix or suffix. When a sample of its rows shows mostly
    distinct values, every row is read at once, grouped by value; otherwise its distinct
    values are read, and the contacts of those that decide (past MANY distinct values, from
    the second clause on, all of them at once).
    """

    MANY = 1_000
    SAMPLE = 2_000

    def __init__(self, views: ContactReads, prop: str, t: int) -> None:
        self.views, self.prop, self.t = views, prop, t
        self._groups: tuple[dict[str, list[str]], list[str]] | None = None
        sample = views.some_values(prop, self.SAMPLE)
        if len(set(sample)) > len(sample) // 2 > self.MANY // 2:
            # A value per contact, or nearly: every row at once, grouped here, costs less
            # than asking SQLite for the distinct values (a sort of them all) and then for
            # their contacts.
            self._groups = self._grouped()
            texts: Iterable[str] = self._groups[0]
        else:
            texts = views.value_texts(prop, t)
        self.values = [(text, decode_json(text)) for text in texts]
        self._by_folded: dict[str, list[str]] | None = None
        self._sorted: list[str] | None = None  # folded texts, in order
        self._sorted_reversed: list[str] | None = None  # folded texts reversed, in order
        self._asked = 0  # the first clause reads its contacts alone; the others, all at once

    def deciding(self, node: a.Condition, holds: Callable[[Any], bool], unknown: bool) -> list[str]:
        """The texts of the values whose test differs from the unknown's."""
        literals = _equal_texts(node)
        if literals is not None:  # `is`, `is not`, `in`, `not in`: the texts equal to one
            by_folded = self.by_folded()
            return [text for f in literals for text in by_folded.get(f, ())]
        if isinstance(node, a.TextMatch):
            by_folded = self.by_folded()
            return [text for f in self._matching(node) for text in by_folded[f]]
        return [text for text, value in self.values if holds(value) != unknown]

    def holders(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """The contacts whose value set by t is one of `texts`; those set after t."""
        self._asked += 1
        if self._groups is None and (len(self.values) <= self.MANY or self._asked == 1):
            return self.views.holders(self.prop, self.t, texts)
        if self._groups is None:
            self._groups = self._grouped()
        by_text, later = self._groups
        # .get: a value may have gone from the view between the two reads (another writer).
        return [contact for text in texts for contact in by_text.get(text, ())], list(later)

    def value_groups(self) -> tuple[list[tuple[Any, list[str]]], list[str]]:
        """Every contact with a value set by t, grouped by the value; those set after t."""
        if self._groups is None:  # few distinct values: SQLite groups them best
            settled, later = self.views.value_groups(self.prop, self.t)
            return [(decode_json(text), contacts) for text, contacts in settled], later
        by_text, later = self._groups
        decoded = dict(self.values)
        return [(decoded[text], contacts) for text, contacts in by_text.items()], later

    def _grouped(self) -> tuple[dict[str, list[str]], list[str]]:
        """Every contact with a value set by t, by its text; those set after t. Every row,
        grouped here: as fast as SQLite's grouping into JSON arrays, without decoding them."""
        by_text: dict[str, list[str]] = {}
        later: list[str] = []
        for contact, text, occurred_at in self.views.values_of(self.prop):
            if occurred_at <= self.t:
                by_text.setdefault(text, []).append(contact)
            else:
                later.append(contact)
        return by_text, later

    def by_folded(self) -> dict[str, list[str]]:
        """The texts of the text values, by folded text."""
        if self._by_folded is None:
            self._by_folded = {}
            for text, value in self.values:
                if isinstance(value, str):
                    self._by_folded.setdefault(fold(value), []).append(text)
        return self._by_folded

    def _matching(self, node: a.TextMatch) -> list[str]:
        """The folded texts that contain, start or end with the condition's text."""
        needle = fold(node.value)
        if node.op is a.TextOp.CONTAINS:
            return [f for f in self.by_folded() if needle in f]
        if node.op is a.TextOp.STARTS_WITH:
            if self._sorted is None:
                self._sorted = sorted(self.by_folded())
            return _with_prefix(self._sorted, needle)
        if self._sorted_reversed is None:
            self._sorted_reversed = sorted(f[::-1] for f in self.by_folded())
        return [f[::-1] for f in _with_prefix(self._sorted_reversed, needle[::-1])]


def _with_prefix(ordered: list[str], prefix: str) -> list[str]:
    """The texts of a sorted list that start with `prefix` (they come together)."""
    found = []
    i = bisect.bisect_left(ordered, prefix)
    while i < len(ordered) and ordered[i].startswith(prefix):
        found.append(ordered[i])
        i += 1
    return found


def _equal_texts(node: a.Condition) -> frozenset[str] | None:
    """The folded texts of an equality on texts alone (`is`, `is not`, `in`, `not in`):
    its value is decided by being one of them. None for any other condition."""
    equality = (a.CompareOp.EQ, a.CompareOp.NE)
    if isinstance(node, a.Compare) and isinstance(node.value, str) and node.op in equality:
        return frozenset({fold(node.value)})
    if isinstance(node, a.InList) and all(isinstance(v, str) for v in node.values):
        return frozenset(fold(v) for v in node.values)
    return None


def _memoized(test: Callable[[Any, int], bool], t: int) -> Callable[[Any], bool]:
    """The test at t, run once per distinct value (keyed with its type: True == 1 in Python)."""
    results: dict[tuple[type, Any], bool] = {}

    def holds(value: Any) -> bool:
        key = (type(value), value)
        try:
            return results[key]
        except KeyError:
            result = results[key] = test(value, t)
            return result
        except TypeError:  # a list or an object: not hashable
            return test(value, t)

    return holds
