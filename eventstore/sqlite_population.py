"""Whole-population queries over the SQLite log (the SQL behind engine/population.py)."""

from __future__ import annotations

import itertools
import json
import operator
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from eventstore.population import (
    EventCountRow,
    EventRange,
    EventRow,
    FieldTexts,
    LogEntry,
    StreamPositions,
    TypeColumns,
)

CONTACT_PREFIX = "contact:"
CONTACT_PREFIX_LENGTH = len(CONTACT_PREFIX)
CONTACT_STREAMS = "stream >= 'contact:' AND stream < 'contact;'"  # by the stream index
_NON_ASCII = "*[^ -~]*"


def _where(query: EventRange) -> tuple[str, list[Any]]:
    clauses = ["position <= ?", CONTACT_STREAMS]
    params: list[Any] = [query.max_position]
    if query.types is not None:
        clauses.append(f"type IN ({', '.join('?' * len(query.types))})")
        params.extend(query.types)
    if query.after is not None:
        clauses.append("occurred_at > ?")
        params.append(query.after)
    if query.until is not None:
        clauses.append("occurred_at <= ?")
        params.append(query.until)
    if query.contacts is not None:
        clauses.append(f"stream IN (SELECT '{CONTACT_PREFIX}' || value FROM json_each(?))")
        params.append(json.dumps(list(query.contacts)))
    if query.contains:
        # LIKE ignores ASCII case only; rows with other characters pass for exact filtering.
        likes = ["data LIKE ? ESCAPE '\\'"] * len(query.contains) + ["data GLOB ?"]
        clauses.append("(" + " OR ".join(likes) + ")")
        params.extend(f"%{_escape_like(text)}%" for text in query.contains)
        params.append(_NON_ASCII)
    return " AND ".join(clauses), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_JSON_VALUE: dict[str, Callable[[Any], Any]] = {
    "null": lambda v: None,
    "true": lambda v: True,
    "false": lambda v: False,
    "integer": lambda v: v,
    "real": lambda v: v,
    "text": lambda v: v,
    "object": json.loads,
    "array": json.loads,
}


class SQLitePopulationQueries:
    """Answers set-wise questions with one SQL statement each."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    def count_events(self, query: EventRange) -> Iterator[EventCountRow]:
        """Per contact with events in the range: count, first and last instants."""
        where, params = _where(query)
        rows = self._connection().execute(
            f"SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}), count(*), min(occurred_at),"
            f" max(occurred_at) FROM events WHERE {where} GROUP BY stream",
            params,
        )
        for contact, count, first, last in rows:
            yield EventCountRow(contact, count, first, last)

    def events(self, query: EventRange) -> Iterator[EventRow]:
        """Every event in the range that passes the pre-filter."""
        where, params = _where(query)
        rows = self._connection().execute(
            f"SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}), occurred_at, position, data"
            f" FROM events WHERE {where}",
            params,
        )
        for contact, occurred_at, position, data in rows:
            yield EventRow(contact, occurred_at, position, json.loads(data))

    def property_values(
        self, prop: str, until: int, max_position: int, contacts: Sequence[str] | None = None
    ) -> Iterator[tuple[str, Any]]:
        """Per contact, the latest value a `contact_updated` event up to `until` gave a prop."""
        path = _path(prop)
        only = ""
        params: list[Any] = [path, until, max_position]
        if contacts is not None:
            only = f" AND stream IN (SELECT '{CONTACT_PREFIX}' || value FROM json_each(?4))"
            params.append(json.dumps(list(contacts)))
        rows = self._connection().execute(
            "SELECT contact, value, kind FROM ("
            f" SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}) AS contact,"
            " json_extract(data, ?1) AS value, json_type(data, ?1) AS kind,"
            " row_number() OVER (PARTITION BY stream ORDER BY occurred_at DESC, position DESC)"
            " AS latest FROM events WHERE type = 'contact_updated' AND occurred_at <= ?2"
            f" AND position <= ?3 AND json_type(data, ?1) IS NOT NULL{only}"
            ") WHERE latest = 1",
            params,
        )
        for contact, value, kind in rows:
            yield contact, _JSON_VALUE[kind](value)

    def numbers(self, query: EventRange, prop: str) -> Iterator[tuple[str, int, Any]]:
        """(contact, occurred_at, the property if it is a JSON number else None) per event."""
        where, params = _where(query)
        path = _path(prop)
        rows = self._connection().execute(
            f"SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}), occurred_at,"
            " CASE WHEN json_type(data, ?) IN ('integer', 'real') THEN json_extract(data, ?) END"
            f" FROM events WHERE {where}",
            [path, path, *params],
        )
        yield from rows

    def latest_assignments(self, max_position: int) -> Iterator[tuple[str, str, Any, int, int]]:
        """(contact, prop, value, occurred_at, position): each property's latest assignment by
        a `contact_updated` event, for every contact (the contact view)."""
        # Sorting the events is cheap; sorting every assignment (a window over json_each) was
        # three times slower. Within a contact the last assignment in this order wins.
        rows = self._connection().execute(
            f"SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}), occurred_at, position, data"
            " FROM events WHERE type = 'contact_updated' AND position <= ?"
            f" AND {CONTACT_STREAMS} ORDER BY stream, occurred_at, position",
            (max_position,),
        )
        for contact, group in itertools.groupby(rows, key=operator.itemgetter(0)):
            latest: dict[str, tuple[Any, int, int]] = {}
            for _, occurred_at, position, data in group:
                for prop, value in json.loads(data).items():
                    latest[prop] = (value, occurred_at, position)
            for prop, (value, occurred_at, position) in latest.items():
                yield contact, prop, value, occurred_at, position

    def property_changes_after(
        self, prop: str, after: int, max_position: int
    ) -> Iterator[tuple[str, int]]:
        """(contact, occurred_at) of `contact_updated` events dated after `after` that set it."""
        rows = self._connection().execute(
            f"SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}), occurred_at FROM events"
            " WHERE type = 'contact_updated' AND occurred_at > ? AND position <= ?"
            " AND json_type(data, ?) IS NOT NULL",
            (after, max_position, _path(prop)),
        )
        yield from rows

    def event_types(self) -> Sequence[str]:
        """Every event type in the log, found by seeking the type index."""
        rows = self._connection().execute(
            "WITH RECURSIVE t(type) AS (SELECT min(type) FROM events UNION ALL"
            " SELECT (SELECT min(type) FROM events WHERE type > t.type) FROM t"
            " WHERE t.type IS NOT NULL) SELECT type FROM t WHERE type IS NOT NULL"
        )
        return [r[0] for r in rows]

    # ---- bulk reads, as numpy columns (the rows never pass through Python one by one) ----

    @contextmanager
    def _scanning(self) -> Iterator[sqlite3.Connection]:
        """The connection, with a small page cache while a statement reads much of the log:
        each page is read once, and a full cache (64 MB) would stay behind for the rest of a
        rebuild, at its peak. Its own size is set back after; pages beyond it are freed."""
        conn = self._connection()
        (size,) = conn.execute("PRAGMA cache_size").fetchone()
        conn.execute(f"PRAGMA cache_size = {SCAN_CACHE_SIZE}")
        try:
            yield conn
        finally:
            conn.execute(f"PRAGMA cache_size = {size}")

    def stream_positions(self, prefix: str, max_position: int) -> StreamPositions:
        """Positions of each stream named `prefix<id>`: two scans of the (stream, version)
        index, both in stream order, one for the names and counts, one for the positions
        (as one text, so that no small text per stream stays behind in memory)."""
        bounds = (prefix, _after_prefix(prefix), max_position)
        with self._scanning() as conn:
            rows = conn.execute(
                "SELECT substr(stream, ?), count(*) FROM events"
                " WHERE stream >= ? AND stream < ? AND position <= ?"
                " GROUP BY stream ORDER BY stream",
                (len(prefix) + 1, *bounds),
            ).fetchall()
            names = [r[0] for r in rows]
            counts = np.array([r[1] for r in rows], np.int64)
            del rows
            (text,) = conn.execute(
                "SELECT group_concat(position) FROM (SELECT position FROM events"
                " WHERE stream >= ? AND stream < ? AND position <= ? ORDER BY stream)",
                bounds,
            ).fetchone()
        return StreamPositions(names, counts, _integers(text or ""))

    def type_columns(self, max_position: int) -> Iterator[TypeColumns]:
        """Positions and occurred_at of each type, through the (type, occurred_at) index."""
        for event_type in self.event_types():
            with self._scanning() as conn:
                positions, occurred = conn.execute(
                    "SELECT group_concat(position), group_concat(occurred_at) FROM events"
                    " WHERE type = ? AND position <= ?",
                    (event_type, max_position),
                ).fetchone()
            if positions is not None:
                yield TypeColumns(event_type, _integers(positions), _integers(occurred))

    def recorded_runs(self, max_position: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """First positions and recorded_at of the runs of equal recorded_at."""
        starts: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for after in range(0, max_position, chunk):
            until = min(after + chunk, max_position)
            with self._scanning() as conn:
                count, recorded = conn.execute(
                    "SELECT count(*), group_concat(recorded_at) FROM events"
                    " WHERE position > ? AND position <= ?",
                    (after, until),
                ).fetchone()
                if not count:
                    continue
                r = _integers(recorded)
                if count == until - after:  # positions are gapless: no need to read them
                    p = np.arange(after + 1, until + 1)
                else:
                    p = _integers(
                        conn.execute(
                            "SELECT group_concat(position) FROM events"
                            " WHERE position > ? AND position <= ?",
                            (after, until),
                        ).fetchone()[0]
                    )
            first = np.flatnonzero(np.diff(r, prepend=r[0] - 1))
            starts.append(p[first])
            values.append(r[first])
        if not starts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        p, r = np.concatenate(starts), np.concatenate(values)
        keep = np.diff(r, prepend=r[0] - 1) != 0  # runs that cross a chunk's end
        return p[keep], r[keep]

    def stream_entries(self, prefix: str, max_position: int) -> Iterator[LogEntry]:
        """Entries of the streams named `prefix<id>`, found through the stream index."""
        rows = self._connection().execute(
            "SELECT position, stream, type, occurred_at, recorded_at, data FROM events"
            " WHERE stream >= ? AND stream < ? AND position <= ? ORDER BY position",
            (prefix, _after_prefix(prefix), max_position),
        )
        for position, stream, kind, occurred_at, recorded_at, data in rows:
            yield LogEntry(position, stream, kind, occurred_at, recorded_at, json.loads(data))

    def field_texts(
        self, types: Sequence[str] | None, fields: Sequence[str], max_position: int, chunk: int
    ) -> Iterator[FieldTexts]:
        """SQLite's `->` gives a field's JSON text as written (a number keeps its digits); the
        texts of a chunk come back joined by a character JSON text cannot hold unescaped."""
        clauses = [CONTACT_STREAMS, "position > ?", "position <= ?"]
        if types is not None:
            # `+type`: read each chunk by position, not every event of the type per chunk.
            clauses.append(f"+type IN ({', '.join('?' * len(types))})")
        texts = "".join(", group_concat(coalesce(data -> ?, ''), char(31))" for _ in fields)
        sql = f"SELECT group_concat(position){texts} FROM events WHERE {' AND '.join(clauses)}"
        for after in range(0, max_position, chunk):
            params = [*map(_path, fields), after, min(after + chunk, max_position)]
            with self._scanning() as conn:
                row = conn.execute(sql, [*params, *(types or ())]).fetchone()
            if row[0] is not None:
                found = {f: text.split(_SEPARATOR) for f, text in zip(fields, row[1:], strict=True)}
                yield FieldTexts(_integers(row[0]), found)


_SEPARATOR = "\x1f"
# Pages of the cache while a statement scans the log (negative: in KiB, 8 MB): enough for the
# b-trees' inner pages along the way.
SCAN_CACHE_SIZE = -8192


def _integers(text: str) -> np.ndarray:
    """Integers written in decimal and joined by commas."""
    if not text:
        return np.empty(0, np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _after_prefix(prefix: str) -> str:
    """The smallest text greater than every text that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _path(prop: str) -> str:
    return '$."' + prop.replace('"', '\\"') + '"'
