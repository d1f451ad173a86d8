"""Whole-population questions: the small, backend-neutral queries the engine asks of the log.

The engine decides what to ask (engine/population.py); each backend answers these queries
with its own query language (eventstore/sqlite_population.py for SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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
    """The questions a backend answers for set-wise evaluation."""

    def count_events(self, query: EventRange) -> Iterator[EventCountRow]:
        """Per contact with at least one event in the range: count, first and last instants."""
        ...

    def events(self, query: EventRange) -> Iterator[EventRow]:
        """Every event in the range that passes the pre-filter."""
        ...

    def property_values(
        self, prop: str, until: int, max_position: int
    ) -> Iterator[tuple[str, Any]]:
        """Per contact, the latest value (by occurred_at, then position) a `contact_updated`
        event with occurred_at <= until gave the property; None for a value set to null."""
        ...

    def property_changes_after(
        self, prop: str, after: int, max_position: int
    ) -> Iterator[tuple[str, int]]:
        """(contact, occurred_at) of `contact_updated` events dated after an instant that set it."""
        ...

    def event_types(self) -> Sequence[str]:
        """Every event type in the log."""
        ...


# ---- bulk reads for the timeline replay (engine/timeline.py) ----


@dataclass(frozen=True)
class LogColumns:
    """A run of log entries in position order, as columns (every stream, no data)."""

    position: Sequence[int]
    stream: Sequence[str]
    type: Sequence[str]
    occurred_at: Sequence[int]
    recorded_at: Sequence[int]


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
class FieldColumns:
    """Positions of some contact events and, per field asked for, the field's raw JSON text
    in each event's data (None where the data has no such field; `null` is the text "null")."""

    position: Sequence[int]
    fields: tuple[Sequence[str | None], ...]


class LogScans(Protocol):
    """Whole-log reads in bulk, for rebuilding projections set-wise."""

    def log_columns(self, max_position: int | None, chunk: int) -> Iterator[LogColumns]:
        """Every entry up to a position (None: all), `chunk` entries at a time, in order."""
        ...

    def stream_entries(self, prefix: str, max_position: int | None) -> Iterator[LogEntry]:
        """Every entry of the streams whose name starts with `prefix`, in position order."""
        ...

    def event_fields(
        self,
        types: Sequence[str] | None,
        fields: Sequence[str],
        max_position: int | None,
        chunk: int,
    ) -> Iterator[FieldColumns]:
        """Contact events of some types (None: all) with the raw JSON of some data fields,
        `chunk` events at a time, in no particular order."""
        ...
