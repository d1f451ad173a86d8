"""The event store's contract: the values it takes and gives, its errors, and its Protocol.

Every backend (SQLite now, PostgreSQL later) implements `EventStore`; engine/ knows
nothing else about it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventstore.population import PopulationQueries


@dataclass(frozen=True)
class NewEvent:
    """An event to append; `occurred_at` (UTC ms) defaults to the instant it is recorded."""

    event_id: str
    stream: str
    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An event as the log holds it."""

    position: int
    event_id: str
    stream: str
    version: int
    type: str
    occurred_at: int
    recorded_at: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Receipt:
    """The acknowledgement of one appended event: its position, and whether it is new."""

    event_id: str
    position: int
    recorded_at: int
    duplicate: bool


@dataclass(frozen=True)
class Unchanged:
    """A guard on an append: since position `after` (what the caller's decision rests on), no
    event of one of `types` was appended to a stream whose name starts with `prefix`."""

    after: int
    prefix: str
    types: frozenset[str]


class EventStoreError(Exception):
    """Base of the store's named errors."""


class ConcurrencyError(EventStoreError):
    """A stream's version was not the one the caller expected; nothing was stored."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, not {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class StoreBusy(EventStoreError):
    """Another writer held the database longer than the wait allowed; nothing was written."""


class EventIdReused(EventStoreError):
    """An event_id that names another event already (another stream, type or data), or two
    events of one batch; nothing was stored. The first such event, and the indexes of all."""

    def __init__(
        self, index: int, event_id: str, position: int | None, indexes: Sequence[int] = ()
    ) -> None:
        where = f"the event at position {position}" if position else "an earlier event of the batch"
        super().__init__(f"event {index}: event_id {event_id!r} already names {where}")
        self.index = index
        self.event_id = event_id
        self.position = position
        self.indexes = list(indexes) or [index]


class InvalidEventError(EventStoreError):
    """An event cannot be stored as given (for example, data that is not JSON)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"event {index}: {message}")
        self.index = index
        self.message = message


class EventStore(Protocol):
    """An append-only log with global positions and per-stream versions."""

    def append(
        self,
        events: Sequence[NewEvent],
        expected_versions: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> list[Receipt]:
        """Store all events or none; a repeated event_id is acknowledged with its old position
        (the same event again: stream, type and data alike, whatever its time; another event
        under a used id raises EventIdReused).

        `expected_versions` maps a stream to the version it must be at before the append
        (0 for a stream that must not exist yet), whether or not the batch writes to it;
        `unchanged` guards a whole kind of streams. A mismatch of either raises
        ConcurrencyError, unless every event of the batch is a repeat.
        """
        ...

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[StoredEvent]:
        """Events with position > after, in order, fetched page by page."""
        ...

    def read_stream(
        self, stream: str, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """One stream's events with version > after_version, in order (at most `limit`)."""
        ...

    def read_streams(self, streams: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Several streams' events, each in order of version."""
        ...

    def last_position(self) -> int:
        """The position of the newest event, 0 for an empty log."""
        ...

    def stream_version(self, stream: str) -> int:
        """The version of a stream's newest event, 0 if it has none."""
        ...

    def occurred_between(self, after: int, upto: int, instant: int) -> bool:
        """Whether an event at a position in (after, upto] occurred at or before `instant`."""
        ...

    def raise_clock_floor(self, instant: int) -> None:
        """Promise that no event appended from now on is recorded before `instant`.

        A projection that has processed time up to `instant` calls this first, so that
        a later append cannot slip in behind what it has already decided.
        """
        ...

    def checkpoint(self, projection: str) -> int:
        """The last position a projection recorded as applied, 0 if none."""
        ...

    def projection_transaction(self, projection: str) -> AbstractContextManager[Checkpoint]:
        """A write transaction in which a projection changes its tables and its checkpoint."""
        ...

    def population(self) -> PopulationQueries:
        """The set-wise questions this backend answers (engine/population.py asks them)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Checkpoint(Protocol):
    """A projection's position inside its write transaction."""

    position: int

    def advance(self, position: int) -> None:
        """Record `position` as applied; committed with the transaction's other changes."""
        ...
