"""The log as numpy columns, for the timeline replay: every entry's position and instant, the
contact events sorted by contact and time, and the data fields that rules read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventstore.population import LogEntry, PopulationQueries

CONTACT_STREAM = "contact:"
SEGMENT_STREAM = "segment:"
MISSING = -1  # value id of a field an event's data does not have


@dataclass
class Entries:
    """Every log entry: its position and recorded_at; and which contact it belongs to."""

    position: np.ndarray
    recorded: np.ndarray
    contact: np.ndarray  # -1 for entries of other streams


@dataclass
class Events:
    """Contact events, sorted by (contact, occurred_at, position): the order in which the
    evaluator reads them, so a row number ranks events of one contact by time."""

    contact: np.ndarray  # int64
    position: np.ndarray
    type: np.ndarray  # int16, an index into `types`
    occurred: np.ndarray
    recorded: np.ndarray
    types: list[str]
    contacts: list[str]

    @property
    def visible(self) -> np.ndarray:
        """From when each event counts: it has happened and the log knows it."""
        return np.maximum(self.occurred, self.recorded)

    def of_type(self, event_type: str | None) -> np.ndarray:
        """Row numbers of the events of a type (None: every event)."""
        if event_type is None:
            return np.arange(len(self.contact))
        if event_type not in self.types:
            return np.empty(0, np.int64)
        return np.flatnonzero(self.type == self.types.index(event_type))


@dataclass
class Log:
    """What the timeline replay reads from the log."""

    entries: Entries
    events: Events
    segment_entries: list[LogEntry]
    max_position: int

    @property
    def last_position(self) -> int:
        """The position of the last entry, 0 for an empty log."""
        return int(self.entries.position[-1]) if len(self.entries.position) else 0

    @property
    def last_recorded(self) -> int | None:
        """The recorded_at of the last entry."""
        return int(self.entries.recorded[-1]) if len(self.entries.recorded) else None


def read_log(queries: PopulationQueries, max_position: int | None, chunk: int = 250_000) -> Log:
    """Every entry as columns; contact events sorted by (contact, occurred_at, position)."""
    streams: dict[str, int] = {}
    types: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    for cols in queries.log_columns(max_position, chunk):
        stream_ids = [streams.setdefault(s, len(streams)) for s in cols.stream]
        type_ids = [types.setdefault(t, len(types)) for t in cols.type]
        parts.append(
            (
                np.array(cols.position, np.int64),
                np.array(stream_ids, np.int64),
                np.array(type_ids, np.int16),
                np.array(cols.occurred_at, np.int64),
                np.array(cols.recorded_at, np.int64),
            )
        )
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else []
    del parts
    if not columns:
        columns = [np.empty(0, np.int64)] * 5
    position, stream, kind, occurred, recorded = columns
    # Streams to contacts: a contact's index is its rank among the contact streams.
    names = list(streams)
    is_contact = np.array([s.startswith(CONTACT_STREAM) for s in names], bool)
    contact_of_stream = np.where(is_contact, np.cumsum(is_contact) - 1, -1)
    contacts = [s[len(CONTACT_STREAM) :] for s in names if s.startswith(CONTACT_STREAM)]
    contact = contact_of_stream[stream] if len(stream) else np.empty(0, np.int64)
    entries = Entries(position, recorded, contact)
    rows = np.flatnonzero(contact >= 0)
    # One sort puts the events in evaluation order; positions break ties (stable).
    order = rows[np.lexsort((occurred[rows], contact[rows]))]
    events = Events(
        contact[order],
        position[order],
        kind[order].astype(np.int16),
        occurred[order],
        recorded[order],
        list(types),
        contacts,
    )
    segment_entries = list(queries.stream_entries(SEGMENT_STREAM, max_position))
    top = int(position[-1]) if len(position) else 0
    return Log(entries, events, segment_entries, top if max_position is None else max_position)


@dataclass
class FieldValues:
    """Data fields of some events: per field, a value id per event row (MISSING if absent)."""

    rows: np.ndarray  # event row numbers (Events order), ascending
    ids: dict[str, np.ndarray]
    values: list[Any]  # value id -> the JSON value


@dataclass
class Fields:
    """Reads data fields of contact events on demand, and remembers them."""

    queries: PopulationQueries
    events: Events
    max_position: int
    chunk: int = 250_000
    _values: list[Any] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    _cache: dict[tuple[str | None, tuple[str, ...]], FieldValues] = field(default_factory=dict)
    _by_position: np.ndarray | None = None

    def read(self, event_type: str | None, names: Iterable[str]) -> FieldValues:
        """The fields of every event of a type (None: every type)."""
        wanted = tuple(sorted(set(names)))
        key = (event_type, wanted)
        found = self._cache.get(key)
        if found is None:
            found = self._read(event_type, wanted)
            self._cache[key] = found
        return found

    def _row_of(self, positions: np.ndarray) -> np.ndarray:
        if self._by_position is None:
            self._by_position = np.argsort(self.events.position)
        sorted_positions = self.events.position[self._by_position]
        return self._by_position[np.searchsorted(sorted_positions, positions)]

    def _read(self, event_type: str | None, names: tuple[str, ...]) -> FieldValues:
        types = None if event_type is None else [event_type]
        positions: list[np.ndarray] = []
        columns: list[list[np.ndarray]] = [[] for _ in names]
        for chunk in self.queries.event_fields(types, names, self.max_position, self.chunk):
            positions.append(np.array(chunk.position, np.int64))
            for i, texts in enumerate(chunk.fields):
                columns[i].append(self._value_ids(texts))
        if not positions:
            empty = np.empty(0, np.int64)
            return FieldValues(empty, {n: empty for n in names}, self._values)
        rows = self._row_of(np.concatenate(positions))
        order = np.argsort(rows)
        ids = {n: np.concatenate(columns[i])[order] for i, n in enumerate(names)}
        return FieldValues(rows[order], ids, self._values)

    def _value_ids(self, texts: Sequence[str | None]) -> np.ndarray:
        ids = self._ids
        out = []
        for text in texts:
            if text is None:
                out.append(MISSING)
                continue
            found = ids.get(text)
            if found is None:
                found = ids[text] = len(self._values)
                self._values.append(json.loads(text))
            out.append(found)
        return np.array(out, np.int64)
