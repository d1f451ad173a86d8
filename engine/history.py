"""A contact's events, indexed the ways evaluation reads them."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from grammar.ast import EventSelector

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


class History:
    """A contact's known events; evaluation at t only looks at those with occurred_at <= t."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = sorted(events, key=lambda e: e.position)
        self.by_time = sorted(self.events, key=lambda e: (e.occurred_at, e.position))
        self._times = [e.occurred_at for e in self.by_time]
        self._selected: dict[EventSelector, tuple[list[Event], list[int]]] = {}
        self._properties: dict[str, tuple[list[PropertyValue], list[int]]] | None = None

    def exists_from(self) -> int | None:
        """The first instant at which the contact exists (its earliest occurred_at), or None."""
        return self._times[0] if self._times else None

    def first_after(self, t: int) -> int | None:
        """The earliest occurred_at after t (a future-dated event), or None."""
        i = bisect.bisect_right(self._times, t)
        return self._times[i] if i < len(self._times) else None

    def selected(self, selector: EventSelector, matches: Any) -> tuple[list[Event], list[int]]:
        """Events of the selector's type that pass its filter, by time, with their instants.

        `matches` is the compiled filter (a function of the event's data), or None.
        """
        found = self._selected.get(selector)
        if found is None:
            events = [
                e
                for e in self.by_time
                if (selector.type is None or e.type == selector.type)
                and (matches is None or matches(e.data))
            ]
            found = (events, [e.occurred_at for e in events])
            self._selected[selector] = found
        return found

    def property_values(self, prop: str) -> tuple[list[PropertyValue], list[int]]:
        """The values `contact_updated` events gave a property, by (occurred_at, position)."""
        if self._properties is None:
            table: dict[str, list[PropertyValue]] = {}
            for e in self.by_time:
                if e.type == CONTACT_UPDATED:
                    for key, value in e.data.items():
                        table.setdefault(key, []).append(
                            PropertyValue(e.occurred_at, e.position, value, e.event_id)
                        )
            self._properties = {k: (v, [p.occurred_at for p in v]) for k, v in table.items()}
        return self._properties.get(prop, ([], []))

    def property_at(self, prop: str, t: int) -> PropertyValue | None:
        """The property's last assignment with occurred_at <= t (ties: later position)."""
        values, times = self.property_values(prop)
        i = bisect.bisect_right(times, t)
        return values[i - 1] if i else None


def as_events(stored: Iterable[Any]) -> list[Event]:
    """Engine events from the store's StoredEvent records."""
    return [
        Event(s.position, s.event_id, s.type, s.occurred_at, s.recorded_at, s.data) for s in stored
    ]
