"""A contact's events, indexed the ways evaluation reads them."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
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


class _Selection:
    """The events one selector reads, in time order, kept up to date as events are added."""

    __slots__ = ("event_type", "events", "matches", "times")

    def __init__(self, event_type: str | None, matches: Any) -> None:
        self.event_type = event_type
        self.matches = matches
        self.events: list[Event] = []
        self.times: list[int] = []

    def offer(self, e: Event) -> None:
        if (self.event_type is None or e.type == self.event_type) and (
            self.matches is None or self.matches(e.data)
        ):
            _insert(self.events, self.times, e, e.occurred_at, _time_key)


def _insert(items: list, times: list[int], item: Any, instant: int, key: Any) -> None:
    """Keep `items` sorted by key and `times` alongside; arrivals in order are appended."""
    if not items or key(items[-1]) <= key(item):
        items.append(item)
        times.append(instant)
    else:
        i = bisect.bisect_right(items, key(item), key=key)
        items.insert(i, item)
        times.insert(i, instant)


class History:
    """A contact's known events; evaluation at t only looks at those with occurred_at <= t.

    Events are added in log order; the indexes the evaluator reads (by time, by selector,
    by property) are kept up to date as they arrive rather than rebuilt.
    """

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.events: list[Event] = []
        self.by_time: list[Event] = []
        self._times: list[int] = []
        self._selections: dict[Any, _Selection] = {}
        # Selections by the type they read (None: any type), so an event meets only its own.
        self._by_type: dict[str | None, list[_Selection]] = {}
        self._properties: dict[str, tuple[list[PropertyValue], list[int]]] = {}
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
            for selection in self._by_type.get(e.type, ()):
                selection.offer(e)
            for selection in self._by_type.get(None, ()):
                selection.offer(e)
            if e.type == CONTACT_UPDATED:
                for key, value in e.data.items():
                    values, times = self._properties.setdefault(key, ([], []))
                    pv = PropertyValue(e.occurred_at, e.position, value, e.event_id)
                    _insert(values, times, pv, e.occurred_at, _value_key)
            seen = max(e.occurred_at, e.recorded_at)
            if self.visible_from is None or seen < self.visible_from:
                self.visible_from = seen

    def exists_from(self) -> int | None:
        """The first instant at which the contact exists (its earliest occurred_at), or None."""
        return self._times[0] if self._times else None

    def first_after(self, t: int) -> int | None:
        """The earliest occurred_at after t (a future-dated event), or None."""
        i = bisect.bisect_right(self._times, t)
        return self._times[i] if i < len(self._times) else None

    def selected(
        self, key: Any, event_type: str | None, matches: Any
    ) -> tuple[list[Event], list[int]]:
        """Events of a type that pass a filter (`matches`, a test of the data, or None), by
        time, with their instants; `key` names the selection (the node that reads it)."""
        selection = self._selections.get(key)
        if selection is None:
            selection = _Selection(event_type, matches)
            for e in self.by_time:
                selection.offer(e)
            self._selections[key] = selection
            self._by_type.setdefault(event_type, []).append(selection)
        return selection.events, selection.times

    def property_values(self, prop: str) -> tuple[list[PropertyValue], list[int]]:
        """The values `contact_updated` events gave a property, by (occurred_at, position)."""
        return self._properties.get(prop, ([], []))

    def properties_at(self, t: int) -> dict[str, Any]:
        """Every property known at t with its value (properties set to null left out)."""
        found = {}
        for prop in self._properties:
            assigned = self.property_at(prop, t)
            if assigned is not None and assigned.value is not None:
                found[prop] = assigned.value
        return found

    def property_at(self, prop: str, t: int) -> PropertyValue | None:
        """The property's last assignment with occurred_at <= t (ties: later position)."""
        values, times = self._properties.get(prop, ((), ()))  # type: ignore[arg-type]
        if not times:
            return None
        if times[-1] <= t:
            return values[-1]
        i = bisect.bisect_right(times, t)
        return values[i - 1] if i else None


def as_events(stored: Iterable[Any]) -> list[Event]:
    """Engine events from the store's StoredEvent records."""
    return [
        Event(s.position, s.event_id, s.type, s.occurred_at, s.recorded_at, s.data) for s in stored
    ]
