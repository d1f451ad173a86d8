"""Whole-population questions: the small, backend-neutral queries the engine asks of the log.

The engine decides what to ask (engine/population.py); each backend answers these queries
with its own query language (eventstore/sqlite_population.py for SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class EventRange:
    """Events of some types with after < occurred_at <= until and position <= max_position.

    `types` None means every type; `after` None means no lower bound. `contains` lists texts
    that a row's raw data must contain (any of them, ignoring ASCII case) to be returned:
    a cheap pre-filter that may let through rows the caller then filters exactly.
    """

    types: tuple[str, ...] | None
    after: int | None
    until: int | None
    max_position: int
    contains: tuple[str, ...] = ()
    contacts: tuple[str, ...] | None = None  # only these contacts (None: all)


@dataclass(frozen=True)
class EventCountRow:
    """Per contact: how many events of a range it has, and the earliest one's instant."""

    contact_id: str
    count: int
    first: int
    last: int


@dataclass(frozen=True)
class EventRow:
    """One event of a range, with its data."""

    contact_id: str
    occurred_at: int
    position: int
    data: dict[str, Any]


class PopulationQueries(Protocol):
    """The questions a backend answers for set-wise evaluation, and the bulk reads of the
    whole log that rebuild projections set-wise (engine/timeline.py)."""

    def count_events(self, query: EventRange) -> Iterator[EventCountRow]:
        """Per contact with at least one event in the range: count, first and last instants."""
        ...

    def events(self, query: EventRange) -> Iterator[EventRow]:
        """Every event in the range that passes the pre-filter."""
        ...

    def property_values(
        self, prop: str, until: int, max_position: int, contacts: Sequence[str] | None = None
    ) -> Iterator[tuple[str, Any]]:
        """Per contact (of `contacts`, or all), the latest value (by occurred_at, then
        position) a `contact_updated` event with occurred_at <= until gave the property;
        None for a value set to null."""
        ...

    def numbers(self, query: EventRange, prop: str) -> Iterator[tuple[str, int, Any]]:
        """(contact, occurred_at, the property if it is a JSON number else None) of each event
        in the range."""
        ...

    def latest_assignments(self, max_position: int) -> Iterator[tuple[str, str, Any, int, int]]:
        """(contact, prop, value, occurred_at, position): each property's latest assignment by
        a `contact_updated` event, for every contact (the contact view)."""
        ...

    def property_changes_after(
        self, prop: str, after: int, max_position: int
    ) -> Iterator[tuple[str, int]]:
        """(contact, occurred_at) of `contact_updated` events dated after an instant that set it."""
        ...

    def event_types(self) -> Sequence[str]:
        """Every event type in the log."""
        ...

    # ---- bulk reads, as numpy columns ----

    def stream_positions(self, prefix: str, max_position: int) -> StreamPositions:
        """The positions of the entries of the streams named `prefix<id>`, stream by stream."""
        ...

    def type_columns(self, max_position: int) -> Iterator[TypeColumns]:
        """Per event type, the positions and occurred_at of its entries (every stream)."""
        ...

    def recorded_runs(self, max_position: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """recorded_at never decreases with position: the first position of each run of
        entries with the same recorded_at, and that recorded_at."""
        ...

    def stream_entries(self, prefix: str, max_position: int) -> Iterator[LogEntry]:
        """Every entry of the streams named `prefix<id>`, with its data, in position order."""
        ...

    def field_texts(
        self, types: Sequence[str] | None, fields: Sequence[str], max_position: int, chunk: int
    ) -> Iterator[FieldTexts]:
        """Contact events of some types (None: every type) with the raw JSON text of some
        fields of their data, for about `chunk` positions at a time, in no set order."""
        ...


@dataclass(frozen=True)
class StreamPositions:
    """Positions of the entries of some streams: `counts[i]` positions of stream `names[i]`
    (its name without the prefix), then the next stream's."""

    names: list[str]
    counts: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class TypeColumns:
    """The entries of one event type."""

    type: str
    position: np.ndarray
    occurred_at: np.ndarray


@dataclass(frozen=True)
class LogEntry:
    """One log entry with its data."""

    position: int
    stream: str
    type: str
    occurred_at: int
    recorded_at: int
    data: dict[str, Any]


@dataclass(frozen=True)
class FieldTexts:
    """Some contact events: their positions and, per field, the field's JSON text in each
    event's data exactly as written ("" where the data has no such field; JSON null is
    "null"), so that it parses to what json.loads gives for the whole data."""

    position: np.ndarray
    texts: dict[str, list[str]]
