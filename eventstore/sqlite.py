"""The embedded event store: one SQLite file, WAL, single writer, triggers that forbid change."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from eventstore.checkpoints import SQLiteTransaction, create_checkpoint_table, read_checkpoint
from eventstore.connections import Connections
from eventstore.interface import (
    ConcurrencyError,
    EventIdReused,
    EventStoreError,
    InvalidEventError,
    NewEvent,
    Receipt,
    StoredEvent,
    Unchanged,
)
from eventstore.sqlite_population import SQLitePopulationQueries

TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS events_are_immutable BEFORE UPDATE ON events BEGIN"
    " SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END",
    "CREATE TRIGGER IF NOT EXISTS events_are_permanent BEFORE DELETE ON events BEGIN"
    " SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted'); END",
    # INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers
    # (unless recursive_triggers is on, which no other connection can be made to promise).
    "CREATE TRIGGER IF NOT EXISTS events_are_never_replaced BEFORE INSERT ON events"
    " WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position)"
    " OR EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)"
    " OR EXISTS (SELECT 1 FROM events WHERE stream = NEW.stream AND version = NEW.version)"
    " BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be replaced'); END",
)


def create_schema(db: sqlite_utils.Database) -> None:
    """The log, its immutability triggers, checkpoints and the clock floor (idempotent)."""
    db["events"].create(
        {
            "position": int,
            "event_id": str,
            "stream": str,
            "version": int,
            "type": str,
            "occurred_at": int,
            "recorded_at": int,
            "data": str,
        },
        pk="position",
        not_null={"event_id", "stream", "version", "type", "occurred_at", "recorded_at", "data"},
        if_not_exists=True,
    )
    db["events"].create_index(["event_id"], unique=True, if_not_exists=True)
    db["events"].create_index(["stream", "version"], unique=True, if_not_exists=True)
    # Whole-population questions read one type's events in a time range.
    db["events"].create_index(["type", "occurred_at"], if_not_exists=True)
    for trigger in TRIGGERS:
        db.execute(trigger)
    create_checkpoint_table(db)
    db["clock_floor"].create({"id": int, "instant": int}, pk="id", if_not_exists=True)
    db.execute("INSERT OR IGNORE INTO clock_floor (id, instant) VALUES (1, 0)")


_COLUMNS = "position, event_id, stream, version, type, occurred_at, recorded_at, data"
_SELECT_AFTER = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_SELECT_STREAM = (
    f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version > ? ORDER BY version LIMIT ?"
)
_SELECT_KNOWN_IDS = (
    "SELECT event_id, position, recorded_at, stream, type, data FROM events"
    " WHERE event_id IN (SELECT value FROM json_each(?))"
)
# One max() per stream, so that each is a single index seek; a GROUP BY over all streams
# would read every version of every stream in the batch (long streams make appends slow).
_SELECT_VERSIONS = (
    "SELECT value, coalesce((SELECT max(version) FROM events WHERE stream = value), 0)"
    " FROM json_each(?)"
)
# The first stream of a kind to have changed since a position, and its version now (a scan
# of the positions after it: a guard's position is recent).
_SELECT_CHANGED = (
    "SELECT stream, (SELECT max(version) FROM events AS e WHERE e.stream = events.stream)"
    " FROM events WHERE position > ? AND substr(stream, 1, ?) = ?"
    " AND type IN (SELECT value FROM json_each(?)) ORDER BY position LIMIT 1"
)
_SELECT_VERSION_AT = (
    "SELECT coalesce(max(version), 0) FROM events WHERE stream = ? AND position <= ?"
)
_SELECT_HEAD = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"
_SELECT_FLOOR = "SELECT instant FROM clock_floor WHERE id = 1"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_MAX_ROWS_PER_INSERT = 512


@functools.cache
def _insert_statement(rows: int) -> str:
    return f"INSERT INTO events ({_COLUMNS}) VALUES " + ", ".join([_ROW] * rows)


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Insert rows with a few multi-row statements rather than one statement per row.

    With triggers on the table SQLite keeps a statement journal for every INSERT statement,
    and per row that costs more than the insert itself. Chunks are powers of two, so only a
    handful of distinct statements are ever prepared (and cached).
    """
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 8
    most = 1 << (min(limit, _MAX_ROWS_PER_INSERT).bit_length() - 1)
    start = 0
    while start < len(rows):
        size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        conn.execute(_insert_statement(size), [value for row in chunk for value in row])
        start += size


# Built once: json.dumps with options builds a new encoder on every call.
to_json_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _encode(index: int, data: Mapping[str, Any]) -> str:
    if type(data) is not dict and not isinstance(data, Mapping):  # the ABC check is slow
        raise InvalidEventError(index, "data must be a JSON object")
    try:
        return to_json_text(data)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(index, f"data is not valid JSON: {exc}") from exc


def _unencodable(events: Sequence[NewEvent], encoded: list[str]) -> int | None:
    """The index of the first event with text that UTF-8 cannot encode, if any."""
    for i, e in enumerate(events):
        try:
            for text in (e.event_id, e.stream, e.type, encoded[i]):
                text.encode("utf-8")
        except UnicodeEncodeError:
            return i
    return None


def _stored(row: tuple) -> StoredEvent:
    return StoredEvent(*row[:7], data=json.loads(row[7]))


class SQLiteEventStore:
    """The event log in one SQLite file, safe to share between threads and processes.

    `durability` is "process" (an acknowledged append survives a crash of the process:
    WAL with synchronous=NORMAL) or "power" (it also survives losing power: FULL).
    `autocheckpoint` off: see eventstore.connections.Connections and `checkpoint_wal`.
    """

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], int],
        *,
        durability: str = "process",
        busy_timeout_ms: int = 30_000,
        page_size: int = 1_000,
        autocheckpoint: bool = True,
    ) -> None:
        # Statement journals (see _insert) in memory, not spilled to temporary files.
        self._connections = Connections(
            path,
            durability=durability,
            busy_timeout_ms=busy_timeout_ms,
            temp_in_memory=True,
            autocheckpoint=autocheckpoint,
        )
        self.path = self._connections.path
        self._clock = clock
        self._page_size = page_size
        self._write = self._connections.write
        with self._write() as conn:
            create_schema(sqlite_utils.Database(conn))

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode."""
        return self._connections.get()

    @contextmanager
    def projection_transaction(self, projection: str) -> Iterator[SQLiteTransaction]:
        """A write transaction for a projection's tables and its checkpoint."""
        with self._write() as conn:
            yield SQLiteTransaction(conn, projection)

    def population(self) -> SQLitePopulationQueries:
        """Set-wise questions over this log."""
        return SQLitePopulationQueries(self.connection)

    def close(self) -> None:
        """Close every connection this store opened."""
        self._connections.close()

    # ---- the log ----

    def append(
        self,
        events: Sequence[NewEvent],
        expected_versions: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> list[Receipt]:
        """Store all events or none; repeats of an event_id are acknowledged, not stored."""
        encoded = [_encode(i, e.data) for i, e in enumerate(events)]
        for i, e in enumerate(events):
            if not e.event_id or not e.stream or not e.type:
                raise InvalidEventError(i, "event_id, stream and type must not be empty")
        expected = dict(expected_versions or {})
        try:
            with self._write() as conn:
                return self._append(conn, events, encoded, expected, unchanged)
        except sqlite3.IntegrityError as exc:
            raise EventStoreError(f"the log refused the append: {exc}") from exc
        except UnicodeEncodeError as exc:
            # A lone surrogate (a JSON escape such as \ud800 on its own) has no UTF-8 form.
            # It is looked for only after the failure, so valid batches pay nothing for it.
            index = _unencodable(events, encoded)
            if index is None:
                raise
            raise InvalidEventError(index, "text is not valid Unicode") from exc

    def _append(
        self,
        conn: sqlite3.Connection,
        events: Sequence[NewEvent],
        encoded: list[str],
        expected: dict[str, int],
        unchanged: Unchanged | None,
    ) -> list[Receipt]:
        ids = list({e.event_id: None for e in events})
        known: dict[str, tuple[int, int]] = {}
        stored: dict[str, tuple[str, str, str]] = {}
        for event_id, position, recorded_at, stream, kind, data in conn.execute(
            _SELECT_KNOWN_IDS, (json.dumps(ids),)
        ):
            known[event_id] = (position, recorded_at)
            stored[event_id] = (stream, kind, data)
        fresh: dict[str, int] = {}
        reused: list[tuple[int, str, int | None]] = []  # every one, for the producer to mend
        for i, e in enumerate(events):
            if e.event_id in known:
                if not _same_event(e, encoded[i], *stored[e.event_id]):
                    reused.append((i, e.event_id, known[e.event_id][0]))
            elif e.event_id in fresh:
                j = fresh[e.event_id]
                if not _same_event(e, encoded[i], events[j].stream, events[j].type, encoded[j]):
                    reused.append((i, e.event_id, None))
            else:
                fresh[e.event_id] = i
        if reused:
            raise EventIdReused(*reused[0], indexes=[i for i, _, _ in reused])
        streams = {events[i].stream for i in fresh.values()}
        wanted = json.dumps(list(streams | set(expected)))
        versions = dict(conn.execute(_SELECT_VERSIONS, (wanted,)))
        # A retried append whose events are all stored already is acknowledged, not refused;
        # otherwise every expected version is checked, also of streams the batch leaves alone
        # (a definition guards the segments it refers to that way).
        for stream, want in expected.items() if fresh else ():
            if versions.get(stream, 0) != want:
                raise ConcurrencyError(stream, want, versions.get(stream, 0))
        if unchanged is not None and fresh:
            _check_unchanged(conn, unchanged)

        head = conn.execute(_SELECT_HEAD).fetchone()
        position, last_recorded = head if head else (0, 0)
        (floor,) = conn.execute(_SELECT_FLOOR).fetchone()
        recorded_at = max(self._clock(), last_recorded, floor)

        rows = []
        receipts: dict[str, Receipt] = {
            event_id: Receipt(event_id, pos, rec, duplicate=True)
            for event_id, (pos, rec) in known.items()
        }
        for event_id, i in fresh.items():
            e = events[i]
            position += 1
            versions[e.stream] += 1
            occurred_at = recorded_at if e.occurred_at is None else e.occurred_at
            rows.append(
                (
                    position,
                    event_id,
                    e.stream,
                    versions[e.stream],
                    e.type,
                    occurred_at,
                    recorded_at,
                    encoded[i],
                )
            )
            receipts[event_id] = Receipt(event_id, position, recorded_at, duplicate=False)
        _insert(conn, rows)
        first_seen: set[str] = set()
        out = []
        for e in events:
            r = receipts[e.event_id]
            if e.event_id in first_seen and not r.duplicate:
                r = Receipt(r.event_id, r.position, r.recorded_at, duplicate=True)
            first_seen.add(e.event_id)
            out.append(r)
        return out

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[StoredEvent]:
        """Events after a position in order, one page per query, so memory stays bounded."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            rows = self.connection().execute(_SELECT_AFTER, (after, size)).fetchall()
            for row in rows:
                yield _stored(row)
            if len(rows) < size:
                return
            after = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def read_stream(
        self, stream: str, after_version: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """One stream's events after a version, in order (at most `limit`)."""
        rows = (
            self.connection()
            .execute(_SELECT_STREAM, (stream, after_version, -1 if limit is None else limit))
            .fetchall()
        )
        return [_stored(row) for row in rows]

    def read_streams(self, streams: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Several streams' events (each in order) in few queries."""
        found: dict[str, list[StoredEvent]] = {s: [] for s in streams}
        names = list(found)
        for start in range(0, len(names), 5_000):
            rows = self.connection().execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream IN (SELECT value FROM json_each(?))"
                " ORDER BY stream, version",
                (json.dumps(names[start : start + 5_000]),),
            )
            for row in rows:
                found[row[2]].append(_stored(row))
        return found

    def last_position(self) -> int:
        """The newest position, 0 when the log is empty."""
        row = self.connection().execute(_SELECT_HEAD).fetchone()
        return row[0] if row else 0

    def stream_version(self, stream: str) -> int:
        """The version of a stream's newest event, 0 if it has none."""
        row = (
            self.connection()
            .execute("SELECT max(version) FROM events WHERE stream = ?", (stream,))
            .fetchone()
        )
        return row[0] or 0

    def occurred_between(self, after: int, upto: int, instant: int) -> bool:
        """Whether an event at a position in (after, upto] occurred at or before `instant`."""
        row = (
            self.connection()
            .execute(
                "SELECT EXISTS (SELECT 1 FROM events WHERE position > ? AND position <= ?"
                " AND occurred_at <= ?)",
                (after, upto, instant),
            )
            .fetchone()
        )
        return bool(row[0])

    def checkpoint_wal(self) -> tuple[int, int]:
        """Copy the file's write-ahead log (shared by every store in the file) back into it, as
        far as readers allow: (pages in the log, pages copied)."""
        return self._connections.checkpoint_wal()

    def raise_clock_floor(self, instant: int) -> None:
        """No append from now on is recorded before `instant`."""
        with self._write() as conn:
            conn.execute(
                "UPDATE clock_floor SET instant = max(instant, ?) WHERE id = 1", (instant,)
            )

    def checkpoint(self, projection: str) -> int:
        """The position a projection last recorded, 0 if none."""
        return read_checkpoint(self.connection(), projection)[0]


def _check_unchanged(conn: sqlite3.Connection, guard: Unchanged) -> None:
    """ConcurrencyError if an event the guard rules out was appended after its position."""
    found = conn.execute(
        _SELECT_CHANGED,
        (guard.after, len(guard.prefix), guard.prefix, json.dumps(sorted(guard.types))),
    ).fetchone()
    if found is not None:
        stream, actual = found
        (then,) = conn.execute(_SELECT_VERSION_AT, (stream, guard.after)).fetchone()
        raise ConcurrencyError(stream, then, actual)


def _same_event(event: NewEvent, encoded: str, stream: str, kind: str, data: str) -> bool:
    """Whether an event repeats one stored (or given) before: a retry, not another event that
    reuses its id. Its time is left out: a producer may stamp a retry anew."""
    return (
        event.stream == stream
        and event.type == kind
        and (encoded == data or _same_value(json.loads(encoded), json.loads(data)))
    )


def _same_value(a: object, b: object) -> bool:
    """JSON equality: 1 and 1.0 alike, keys in any order, but true is not 1 (Python's == has
    True == 1, which would take another event for a retry)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_value, a, b))
    return a == b and (type(a) is type(b) or {type(a), type(b)} <= {int, float})
