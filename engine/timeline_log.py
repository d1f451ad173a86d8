"""The log as numpy columns, for the timeline replay: the instants entries were recorded at,
the contact events sorted by contact and time, and the data fields that rules read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.values import decode_json
from eventstore.population import LogEntry, PopulationQueries

CONTACT_STREAM = "contact:"
SEGMENT_STREAM = "segment:"
MISSING = -1  # value id of a field an event's data does not have
CHUNK = 250_000  # positions per bulk read of data fields


@dataclass
class Events:
    """Contact events, sorted by (contact, occurred_at, position): the order in which the
    evaluator reads them, so a row number ranks the events of one contact by time."""

    contact: np.ndarray  # int32, an index into `contacts`
    position: np.ndarray
    type: np.ndarray  # int16, an index into `types`
    occurred: np.ndarray
    recorded: np.ndarray
    types: list[str]
    contacts: list[str]
    _row_by_position: np.ndarray | None = field(default=None, init=False, repr=False)

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

    def row_of(self, positions: np.ndarray) -> np.ndarray:
        """The row numbers of events given by position."""
        if self._row_by_position is None:
            size = int(self.position.max()) + 1 if len(self.position) else 1
            self._row_by_position = np.full(size, -1, np.int32)
            self._row_by_position[self.position] = np.arange(len(self.position))
        return self._row_by_position[positions]


@dataclass
class Log:
    """What the timeline replay reads from the log."""

    events: Events
    instants: np.ndarray  # every distinct recorded_at, ascending
    segment_entries: list[LogEntry]
    last_position: int

    @property
    def last_recorded(self) -> int | None:
        """The recorded_at of the last entry, None for an empty log."""
        return int(self.instants[-1]) if len(self.instants) else None


def read_log(queries: PopulationQueries, max_position: int) -> Log:
    """Every contact event as columns, sorted by (contact, occurred_at, position)."""
    streams = queries.stream_positions(CONTACT_STREAM, max_position)
    contact_of = np.full(max_position + 1, -1, np.int32)
    contact_of[streams.positions] = np.repeat(
        np.arange(len(streams.names), dtype=np.int32), streams.counts
    )
    run_starts, run_recorded = queries.recorded_runs(max_position, 2_000_000)
    types: list[str] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for column in queries.type_columns(max_position):
        mine = contact_of[column.position] >= 0
        if mine.any():
            kind = np.full(int(mine.sum()), len(types), np.int16)
            parts.append((column.position[mine], column.occurred_at[mine], kind))
            types.append(column.type)
    if parts:
        position, occurred, kind = (np.concatenate(c) for c in zip(*parts, strict=True))
    else:
        position = occurred = np.empty(0, np.int64)
        kind = np.empty(0, np.int16)
    del parts
    contact = contact_of[position]
    del contact_of
    # In position order first, so that a stable sort by (contact, time) breaks ties by it.
    slot = np.full(max_position + 1, -1, np.int64)
    slot[position] = np.arange(len(position))
    by_position = slot[slot >= 0]
    del slot
    position, occurred, kind, contact = (
        position[by_position],
        occurred[by_position],
        kind[by_position],
        contact[by_position],
    )
    order = np.lexsort((occurred, contact))
    position, occurred, kind, contact = (
        position[order],
        occurred[order],
        kind[order],
        contact[order],
    )
    recorded = run_recorded[np.searchsorted(run_starts, position, side="right") - 1]
    events = Events(contact, position, kind, occurred, recorded, types, streams.names)
    segment_entries = list(queries.stream_entries(SEGMENT_STREAM, max_position))
    return Log(events, run_recorded, segment_entries, max_position)


@dataclass
class FieldValues:
    """Data fields of some events: per field, a value id per event row (MISSING if absent).
    Values are kept as their JSON text and parsed when asked for: most are asked once."""

    rows: np.ndarray  # event row numbers (Events order), ascending
    ids: dict[str, np.ndarray]
    texts: list[str]  # value id -> the value's JSON text

    def value(self, value_id: int) -> Any:
        """The value with an id (None for MISSING: a missing field reads as None)."""
        return None if value_id == MISSING else decode_json(self.texts[value_id])


@dataclass
class Fields:
    """Reads data fields of contact events on demand, and remembers them."""

    queries: PopulationQueries
    events: Events
    max_position: int
    _cache: dict[tuple[str | None, tuple[str, ...]], FieldValues] = field(default_factory=dict)

    def read(self, event_type: str | None, names: Iterable[str]) -> FieldValues:
        """The fields of every event of a type (None: every type)."""
        wanted = tuple(sorted(set(names)))
        key = (event_type, wanted)
        found = self._cache.get(key)
        if found is None:
            found = self._read(event_type, wanted)
            self._cache[key] = found
        return found

    def forget(self, event_type: str | None) -> None:
        """Drop what was read of a type's events (read again if asked for)."""
        for key in [k for k in self._cache if k[0] == event_type]:
            del self._cache[key]

    def _read(self, event_type: str | None, names: tuple[str, ...]) -> FieldValues:
        types = None if event_type is None else [event_type]
        rows: list[np.ndarray] = []
        columns: dict[str, list[np.ndarray]] = {n: [] for n in names}
        ids: dict[str, int] = {"": MISSING}  # a text's id, for this read only
        texts: list[str] = []
        for chunk in self.queries.field_texts(types, names, self.max_position, CHUNK):
            rows.append(self.events.row_of(chunk.position))
            for name, found in chunk.texts.items():
                columns[name].append(_value_ids(found, ids, texts))
        if not rows:
            empty = np.empty(0, np.int64)
            return FieldValues(empty, {n: empty for n in names}, texts)
        every = np.concatenate(rows)
        order = np.argsort(every)
        return FieldValues(
            every[order], {n: np.concatenate(columns[n])[order] for n in names}, texts
        )


def _value_ids(found: list[str], ids: dict[str, int], texts: list[str]) -> np.ndarray:
    """A value id per JSON text: the same text, the same id; "" (no field): MISSING."""
    for text in dict.fromkeys(found):  # each distinct text once, at C speed
        if text not in ids:
            ids[text] = len(texts)
            texts.append(text)
    return np.fromiter(map(ids.__getitem__, found), np.int32, len(found))
