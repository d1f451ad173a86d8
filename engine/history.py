"""A contact's events, indexed the ways evaluation reads them."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONTACT_UPDATED = "contact_updated"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one contact, as the engine sees it."""

    position: int
    event_id: str
    type: str
    occurred_at: int
    recorded_at: int
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PropertyValue:
    """A value a `contact_updated` event gave to a property (None: set to unknown)."""

    occurred_at: int
    position: int
    value: Any
    event_id: str


def _time_key(e: Event) -> tuple[int, int]:
    return (e.occurred_at, e.position)


def _value_key(v: PropertyValue) -> tuple[int, int]:
    return (v.occurred_at, v.position)


# A history of up to this many events answers by scanning them; a longer one keeps an index
# per selector and per property. The service caches 100,000 histories, most of them a few
# events long: indexed, each held about 60 objects (empty selections, one list of values
# per property), and the cycle collector walked 5.8 million objects in each full collection
# (1.2 s here, every request waiting).
INDEXED_FROM = 8


class _Selection:
    """The events one selector reads, in time order, kept up to date as events are added."""

    __slots__ = ("event_type", "events", "matches", "times")

    def __init__(self, event_type: str | None, matches: Any) -> None:
        self.event_type = event_type
        self.matches = matches
        # Most selections stay empty: their lists come with their first event.
        self.events: list[Event] | tuple[()] = ()
        self.times: list[int] | tuple[()] = ()

    def offer(self, e: Event) -> None:
        if _selects(self.event_type, self.matches, e):
            if not self.events:
                self.events, self.times = [], []
            _insert(self.events, self.times, e, e.occurred_at, _time_key)  # type: ignore[arg-type]


def _selects(event_type: str | None, matches: Any, e: Event) -> bool:
    return (event_type is None or e.type == event_type) and (matches is None or matches(e.data))


def _insert(items: list, times: list[int], item: Any, instant: int, key: Any) -> None:
    """Keep `items` sorted by key and `times` alongside; arrivals in order are appended."""
    if not items or key(items[-1]) <= key(item):
        items.append(item)
        times.append(instant)
    else:
        i = bisect.bisect_right(items, key(item), key=key)
        items.insert(i, item)
        times.insert(i, instant)


class _Indexes:
    """What a long history keeps besides its events: per selector and per property."""

    __slots__ = ("by_type", "properties", "selections")

    def __init__(self) -> None:
        self.selections: dict[Any, _Selection] = {}
        # Selections by the type they read (None: any type), so an event meets only its own.
        self.by_type: dict[str | None, list[_Selection]] = {}
        self.properties: dict[str, tuple[list[PropertyValue], list[int]]] = {}

    def add(self, e: Event) -> None:
        for selection in self.by_type.get(e.type, ()):
            selection.offer(e)
        for selection in self.by_type.get(None, ()):
            selection.offer(e)
        if e.type == CONTACT_UPDATED:
            for key, value in e.data.items():
                values, times = self.properties.setdefault(key, ([], []))
                pv = PropertyValue(e.occurred_at, e.position, value, e.event_id)
                _insert(values, times, pv, e.occurred_at, _value_key)


class History:
    """A contact's known events; evaluation at t only looks at those with occurred_at <= t.

    Events are added in log order. Past INDEXED_FROM events, the indexes the evaluator reads
    (by selector, by property) are kept up to date as they arrive rather than rebuilt.
    """

    def __init__(self, events: Iterable[Event] = (), indexed_from: int = INDEXED_FROM) -> None:
        self.events: list[Event] = []
        self.by_time: list[Event] = []
        self._times: list[int] = []
        self._indexed_from = indexed_from
        self._indexes: _Indexes | None = None
        self.visible_from: int | None = None
        self.add(events)

    def add(self, events: Iterable[Event]) -> None:
        """Add events that come after every event already here in the log."""
        for e in sorted(events, key=lambda x: x.position):
            if self.events and e.position <= self.events[-1].position:
                # Counted twice, it would move counts and totals without a word.
                raise ValueError(f"event at position {e.position} is not after this history")
            self.events.append(e)
            _insert(self.by_time, self._times, e, e.occurred_at, _time_key)
            if self._indexes is not None:
                self._indexes.add(e)
            seen = max(e.occurred_at, e.recorded_at)
            if self.visible_from is None or seen < self.visible_from:
                self.visible_from = seen
        if self._indexes is None and len(self.events) > self._indexed_from:
            self._indexes = _Indexes()
            for e in self.by_time:  # in (occurred_at, position) order: every insert appends
                self._indexes.add(e)

    def exists_from(self) -> int | None:
        """The first instant at which the contact exists (its earliest occurred_at), or None."""
        return self._times[0] if self._times else None

    def first_after(self, t: int) -> int | None:
        """The earliest occurred_at after t (a future-dated event), or None."""
        i = bisect.bisect_right(self._times, t)
        return self._times[i] if i < len(self._times) else None

    def selected(
        self, key: Any, event_type: str | None, matches: Any
    ) -> tuple[Sequence[Event], Sequence[int]]:
        """Events of a type that pass a filter (`matches`, a test of the data, or None), by
        time, with their instants; `key` names the selection (the node that reads it)."""
        indexes = self._indexes
        if indexes is None:
            found = [e for e in self.by_time if _selects(event_type, matches, e)]
            return found, [e.occurred_at for e in found]
        selection = indexes.selections.get(key)
        if selection is None:
            selection = _Selection(event_type, matches)
            for e in self.by_time:
                selection.offer(e)
            indexes.selections[key] = selection
            indexes.by_type.setdefault(event_type, []).append(selection)
        return selection.events, selection.times

    def property_values(self, prop: str) -> tuple[Sequence[PropertyValue], Sequence[int]]:
        """The values `contact_updated` events gave a property, by (occurred_at, position)."""
        if self._indexes is not None:
            return self._indexes.properties.get(prop, ((), ()))
        values = [
            PropertyValue(e.occurred_at, e.position, e.data[prop], e.event_id)
            for e in self.by_time
            if e.type == CONTACT_UPDATED and prop in e.data
        ]
        return values, [v.occurred_at for v in values]

    def properties_at(self, t: int) -> dict[str, Any]:
        """Every property known at t with its value (properties set to null left out)."""
        found = {}
        for prop in self._property_names():
            assigned = self.property_at(prop, t)
            if assigned is not None and assigned.value is not None:
                found[prop] = assigned.value
        return found

    def _property_names(self) -> Iterable[str]:
        if self._indexes is not None:
            return self._indexes.properties
        return dict.fromkeys(
            prop for e in self.events if e.type == CONTACT_UPDATED for prop in e.data
        )

    def property_at(self, prop: str, t: int) -> PropertyValue | None:
        """The property's last assignment with occurred_at <= t (ties: later position)."""
        values, times = self.property_values(prop)
        if not times:
            return None
        if times[-1] <= t:
            return values[-1]
        i = bisect.bisect_right(times, t)
        return values[i - 1] if i else None
