"""Whole-population queries over the SQLite log (the SQL behind engine/population.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from eventstore.population import (
    EventCountRow,
    EventRange,
    EventRow,
    FieldColumns,
    LogColumns,
    LogEntry,
)

CONTACT_PREFIX_LENGTH = len("contact:")
_NON_ASCII = "*[^ -~]*"


def _where(query: EventRange) -> tuple[str, list[Any]]:
    clauses = ["position <= ?", "stream >= 'contact:' AND stream < 'contact;'"]
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
        self, prop: str, until: int, max_position: int
    ) -> Iterator[tuple[str, Any]]:
        """Per contact, the latest value a `contact_updated` event up to `until` gave a prop."""
        path = _path(prop)
        rows = self._connection().execute(
            "SELECT contact, value, kind FROM ("
            f" SELECT substr(stream, {CONTACT_PREFIX_LENGTH + 1}) AS contact,"
            " json_extract(data, ?1) AS value, json_type(data, ?1) AS kind,"
            " row_number() OVER (PARTITION BY stream ORDER BY occurred_at DESC, position DESC)"
            " AS latest FROM events WHERE type = 'contact_updated' AND occurred_at <= ?2"
            " AND position <= ?3 AND json_type(data, ?1) IS NOT NULL"
            ") WHERE latest = 1",
            (path, until, max_position),
        )
        for contact, value, kind in rows:
            yield contact, _JSON_VALUE[kind](value)

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


def _path(prop: str) -> str:
    return '$."' + prop.replace('"', '\\"') + '"'


class SQLiteLogScans:
    """Whole-log reads in bulk (the SQL behind engine/timeline.py)."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    def log_columns(self, max_position: int | None, chunk: int) -> Iterator[LogColumns]:
        """Every entry up to a position, as columns, one page of `chunk` per query."""
        after, until = 0, _NO_LIMIT if max_position is None else max_position
        while True:
            rows = (
                self._connection()
                .execute(
                    "SELECT position, stream, type, occurred_at, recorded_at FROM events"
                    " WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
                    (after, until, chunk),
                )
                .fetchall()
            )
            if not rows:
                return
            yield LogColumns(*zip(*rows, strict=True))
            after = rows[-1][0]
            if len(rows) < chunk:
                return

    def stream_entries(self, prefix: str, max_position: int | None) -> Iterator[LogEntry]:
        """Entries of the streams named `prefix...`, found through the stream index."""
        rows = self._connection().execute(
            "SELECT position, stream, type, occurred_at, recorded_at, data FROM events"
            " WHERE stream >= ? AND stream < ? AND position <= ? ORDER BY position",
            (prefix, _after_prefix(prefix), _NO_LIMIT if max_position is None else max_position),
        )
        for position, stream, kind, occurred_at, recorded_at, data in rows:
            yield LogEntry(position, stream, kind, occurred_at, recorded_at, json.loads(data))

    def event_fields(
        self,
        types: Sequence[str] | None,
        fields: Sequence[str],
        max_position: int | None,
        chunk: int,
    ) -> Iterator[FieldColumns]:
        """Contact events with the raw JSON text of data fields (SQLite's `->` keeps a
        number's text as written, so the caller parses it exactly as json.loads would)."""
        clauses = ["stream >= 'contact:' AND stream < 'contact;'", "position <= ?"]
        params: list[Any] = [_NO_LIMIT if max_position is None else max_position]
        if types is not None:
            clauses.append(f"type IN ({', '.join('?' * len(types))})")
            params.extend(types)
        extracts = "".join(f", data -> '{_path(f)}'" for f in fields)
        cursor = self._connection().execute(
            f"SELECT position{extracts} FROM events WHERE {' AND '.join(clauses)}", params
        )
        while rows := cursor.fetchmany(chunk):
            columns = tuple(zip(*rows, strict=True))
            yield FieldColumns(columns[0], columns[1:])


_NO_LIMIT = (1 << 63) - 1


def _after_prefix(prefix: str) -> str:
    """The smallest text greater than every text that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
