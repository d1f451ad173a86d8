"""The membership projection in SQLite: memberships (with their deadlines), transitions,
contacts, definitions.

It may live in the log's own file (the service) or in another (a scratch replay).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from eventstore.checkpoints import SQLiteTransaction, create_checkpoint_table, read_checkpoint
from eventstore.connections import Connections
from eventstore.projection import (
    ENTERED,
    Cause,
    ContactViewBuild,
    DefinitionRecord,
    Forecast,
    MembershipRow,
    TransitionRecord,
    TransitionRow,
)
from eventstore.sqlite import to_json_text
from eventstore.sqlite_contact_view import (
    CONTACT_VALUES_COLUMNS,
    LATEST_WINS,
    SQLiteContactViewBuild,
    log_is_in,
)

NAME = "membership"
SCHEMA_VERSION = 7  # raise it when the tables change: older projections are rebuilt
TABLES = (
    "memberships",
    "transitions",
    "member_counts",
    "contacts",
    "contact_values",
    "segment_definitions",
)
RETIRED_TABLES = ("members", "deadlines")  # of older shapes (schema 3): dropped with them


def create_schema(db: sqlite_utils.Database) -> None:
    """The projection's tables and indexes (idempotent)."""
    # One row per contact and segment that is a member (since), has a deadline (due, with
    # its forecast: then_member, then_due) or both; neither: no row. One row, not
    # two tables: a contact leaving with nothing ahead is one delete (a second can bring a
    # hundred thousand).
    db.execute(
        "CREATE TABLE IF NOT EXISTS memberships (segment_id TEXT NOT NULL,"
        " contact_id TEXT NOT NULL, since INTEGER, due INTEGER, then_member INTEGER,"
        " then_due INTEGER, PRIMARY KEY (segment_id, contact_id))"
        " WITHOUT ROWID"
    )
    db["memberships"].create_index(["contact_id"], if_not_exists=True)
    db["transitions"].create(
        {
            "id": int,
            "segment_id": str,
            "contact_id": str,
            "kind": str,
            "at": int,
            "rule_version": int,
            "cause_kind": str,
            "cause_position": int,
        },
        pk="id",
        not_null={"segment_id", "contact_id", "kind", "at", "rule_version", "cause_kind"},
        if_not_exists=True,
    )
    # A segment's page of transitions is a range of (segment_id, id); a contact's, of
    # (contact_id, segment_id, id). Neither sorts the segment's transitions (a million
    # for a busy segment) to find the page after a cursor.
    db["transitions"].create_index(["segment_id"], if_not_exists=True)
    db["transitions"].create_index(["contact_id", "segment_id"], if_not_exists=True)
    # Covering: the deadlines due are read in this order, with all they bring.
    db.execute(
        "CREATE INDEX IF NOT EXISTS memberships_due ON memberships"
        " (due, segment_id, contact_id, since, then_member, then_due)"
        " WHERE due IS NOT NULL"
    )
    # Entries minus exits, per segment: listing segments reads a number, not every member.
    db.execute(
        "CREATE TABLE IF NOT EXISTS member_counts (segment_id TEXT PRIMARY KEY,"
        " members INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS contacts (contact_id TEXT PRIMARY KEY,"
        " exists_from INTEGER NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.execute(f"CREATE TABLE IF NOT EXISTS contact_values {CONTACT_VALUES_COLUMNS}")
    db["segment_definitions"].create(
        {"position": int, "stream": str, "type": str, "recorded_at": int, "data": str},
        pk="position",
        if_not_exists=True,
    )
    create_checkpoint_table(db)


def _transition(row: tuple) -> TransitionRecord:
    tid, segment_id, contact_id, kind, at, version, cause_kind, cause_position = row
    return TransitionRecord(
        segment_id, contact_id, kind, at, version, Cause(cause_kind, cause_position), tid
    )


_NO_FORECAST = (None, None)


def _membership_values(row: MembershipRow) -> tuple[Any, ...]:
    segment_id, contact_id, since, due, forecast = row
    return (segment_id, contact_id, since, due, *(forecast or _NO_FORECAST))


_MEMBERSHIP_COLUMNS = "segment_id, contact_id, since, due, then_member, then_due"
# The deadlines after a key, in the order of the covering index memberships_due.
_AFTER = "due IS NOT NULL AND (due, segment_id, contact_id) > (?, ?, ?)"
_DEADLINE_ORDER = "due, segment_id, contact_id"


def _counted(
    rows: Iterable[TransitionRow], counts: Counter[tuple[str, str]]
) -> Iterator[TransitionRow]:
    for row in rows:
        counts[row[0], row[2]] += 1
        yield row


def _membership_rows(rows: Iterable[tuple]) -> list[MembershipRow]:
    # One comprehension, no call per row: a second's deadlines can be a hundred thousand.
    return [
        (s, c, since, due, None if then is None else Forecast(then == 1, d))
        for s, c, since, due, then, d in rows
    ]


_INSERT_TRANSITION = (
    "INSERT INTO transitions (segment_id, contact_id, kind, at, rule_version, cause_kind,"
    " cause_position) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_TRANSITION_COLUMNS = (
    "id, segment_id, contact_id, kind, at, rule_version, cause_kind, cause_position"
)


def _drop(conn: sqlite3.Connection) -> None:
    for table in (*TABLES, *RETIRED_TABLES):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'"
    ).fetchone():
        conn.execute("DELETE FROM projection_checkpoints WHERE name = ?", (NAME,))


def _next_deadline(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT min(due) FROM memberships WHERE due IS NOT NULL").fetchone()[0]


class SQLiteContactReads:
    """The contact view's questions, asked on the connection the class reads with (a
    session's own transaction, or the store's per-thread connection)."""

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def contacts(self) -> list[str]:
        """Every known contact."""
        return [r[0] for r in self._reader().execute("SELECT contact_id FROM contacts")]

    def started_by(self, until: int) -> set[str]:
        """The contacts whose first event occurred at or before `until`."""
        # One JSON text decodes faster than as many rows: this can be every contact.
        (found,) = (
            self._reader()
            .execute(
                "SELECT json_group_array(contact_id) FROM contacts WHERE exists_from <= ?",
                (until,),
            )
            .fetchone()
        )
        return set(json.loads(found))

    def first_events(self, after: int | None, until: int | None) -> dict[str, int]:
        """The contacts whose first event occurred in (after, until], with its instant."""
        return self._between("exists_from", after, until)

    def last_events(self, after: int | None, until: int | None) -> dict[str, int]:
        """The contacts whose latest event occurred in (after, until], with its instant."""
        return self._between("last_seen", after, until)

    def _between(self, column: str, after: int | None, until: int | None) -> dict[str, int]:
        lo = -(1 << 63) if after is None else after
        hi = (1 << 63) - 1 if until is None else until
        return dict(
            self._reader().execute(
                f"SELECT contact_id, {column} FROM contacts WHERE {column} > ? AND {column} <= ?",
                (lo, hi),
            )
        )

    def values_of(self, prop: str) -> Iterator[tuple[str, str, int]]:
        """(contact, value as JSON, occurred_at) of each contact's latest assignment of a prop."""
        return iter(
            self._reader().execute(
                "SELECT contact_id, value, occurred_at FROM contact_values WHERE prop = ?", (prop,)
            )
        )

    def value_groups(self, prop: str, until: int) -> tuple[list[tuple[str, list[str]]], list[str]]:
        """The contacts whose latest value of a property was set by `until`, grouped by its
        JSON text; and the contacts whose latest value was set after it."""
        # A property takes few distinct values: few groups come back.
        groups = [
            (text, json.loads(contacts))
            for text, contacts in self._reader().execute(
                "SELECT value, json_group_array(contact_id) FROM contact_values"
                " WHERE prop = ? AND occurred_at <= ? GROUP BY value",
                (prop, until),
            )
        ]
        return groups, self._set_after(prop, until)

    def value_texts(self, prop: str, until: int) -> list[str]:
        """The distinct JSON texts of the latest values of a property set by `until`."""
        rows = self._reader().execute(
            "SELECT DISTINCT value FROM contact_values WHERE prop = ? AND occurred_at <= ?",
            (prop, until),
        )
        return [row[0] for row in rows]

    def some_values(self, prop: str, limit: int) -> list[str]:
        """The JSON texts of up to `limit` contacts' latest values of a property, any."""
        rows = self._reader().execute(
            "SELECT value FROM contact_values WHERE prop = ? LIMIT ?", (prop, limit)
        )
        return [row[0] for row in rows]

    def holders(self, prop: str, until: int, texts: Sequence[str]) -> tuple[list[str], list[str]]:
        """The contacts whose latest value of a property, set by `until`, is one of `texts`;
        and the contacts whose latest value was set after it."""
        (found,) = (
            self._reader()
            .execute(
                "SELECT json_group_array(contact_id) FROM contact_values WHERE prop = ?"
                " AND occurred_at <= ? AND value IN (SELECT value FROM json_each(?))",
                (prop, until, json.dumps(list(texts))),
            )
            .fetchone()
        )
        return json.loads(found), self._set_after(prop, until)

    def _set_after(self, prop: str, until: int) -> list[str]:
        rows = self._reader().execute(
            "SELECT contact_id FROM contact_values WHERE prop = ? AND occurred_at > ?",
            (prop, until),
        )
        return [row[0] for row in rows]


class SQLiteProjectionSession(SQLiteContactReads, SQLiteTransaction):
    """One write transaction on the projection tables, with the projection's checkpoint."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, NAME)
        self.conn = conn
        self._in_bulk = False

    def _reader(self) -> sqlite3.Connection:
        return self.conn

    def clear(self) -> None:
        """Drop everything the projection holds, checkpoint included, in this transaction:
        readers see the projection as it was until a new one is committed in its place."""
        _drop(self.conn)
        create_schema(sqlite_utils.Database(self.conn))
        self.position, self.instant = 0, 0

    def save_definition(self, record: DefinitionRecord) -> None:
        """Keep a segment definition event."""
        self.conn.execute(
            "INSERT OR REPLACE INTO segment_definitions VALUES (?, ?, ?, ?, ?)",
            (
                record.position,
                record.stream,
                record.type,
                record.recorded_at,
                json.dumps(record.data),
            ),
        )

    def add_transition(self, record: TransitionRecord) -> int:
        """Store a transition; returns its id."""
        cur = self.conn.execute(
            "INSERT INTO transitions (segment_id, contact_id, kind, at, rule_version, cause_kind,"
            " cause_position) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.segment_id,
                record.contact_id,
                record.kind,
                record.at,
                record.rule_version,
                record.cause.kind,
                record.cause.position,
            ),
        )
        self._count(Counter({(record.segment_id, record.kind): 1}))
        return cur.lastrowid  # type: ignore[return-value]

    def last_transition_id(self) -> int:
        """The highest transition id, 0 if none."""
        return self.conn.execute("SELECT max(id) FROM transitions").fetchone()[0] or 0

    def write_transitions(self, records: Sequence[TransitionRecord]) -> None:
        """Store transitions that carry their ids."""
        self.conn.executemany(
            "INSERT INTO transitions (id, segment_id, contact_id, kind, at, rule_version,"
            " cause_kind, cause_position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            # Unpacked, not read by name: faster on a hundred thousand exits.
            (
                (i, segment, contact, kind, at, version, cause.kind, cause.position)
                for segment, contact, kind, at, version, cause, i in records
            ),
        )
        self._count(Counter((r[0], r[2]) for r in records))

    def insert_transitions(self, rows: Iterable[TransitionRow]) -> None:
        """Store many new transitions at once, ids given in order."""
        if self._in_bulk:
            # Counted once when the bulk write ends: counting row by row cost 2 us a row.
            self.conn.executemany(_INSERT_TRANSITION, rows)
            return
        counts: Counter[tuple[str, str]] = Counter()
        self.conn.executemany(_INSERT_TRANSITION, _counted(rows, counts))
        self._count(counts)

    def _count(self, transitions: Counter[tuple[str, str]]) -> None:
        """Move the member counts by some transitions (segment, kind) written or removed."""
        moves: Counter[str] = Counter()
        for (segment, kind), n in transitions.items():
            moves[segment] += n if kind == ENTERED else -n
        self.conn.executemany(
            "INSERT INTO member_counts VALUES (?, ?) ON CONFLICT (segment_id)"
            " DO UPDATE SET members = members + excluded.members",
            moves.items(),
        )

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Drop the projection tables' secondary indexes, and build them again at the end:
        one sort per index instead of an index update per row. The member counts are taken
        from the memberships at the end too."""
        indexes = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(TABLES))})",
            TABLES,
        ).fetchall()
        for name, _ in indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        self._in_bulk = True
        try:
            yield
        finally:
            self._in_bulk = False
        for _, sql in indexes:
            self.conn.execute(sql)
        self.conn.execute("DELETE FROM member_counts")
        self.conn.execute(
            "INSERT INTO member_counts SELECT segment_id, count(*) FROM memberships"
            " WHERE since IS NOT NULL GROUP BY segment_id"
        )

    def delete_transition(self, transition_id: int) -> None:
        """Remove a transition undone within the same instant."""
        row = self.conn.execute(
            "DELETE FROM transitions WHERE id = ? RETURNING segment_id, kind", (transition_id,)
        ).fetchone()
        if row is not None:
            self._count(Counter({tuple(row): -1}))

    def revise_transition(self, transition_id: int, cause: Cause, rule_version: int) -> None:
        """Give a transition a later cause of the same instant (and the rule then in force)."""
        self.conn.execute(
            "UPDATE transitions SET cause_kind = ?, cause_position = ?, rule_version = ?"
            " WHERE id = ?",
            (cause.kind, cause.position, rule_version, transition_id),
        )

    def transitions_at(
        self, instant: int, contacts: Sequence[str] | None = None
    ) -> list[TransitionRecord]:
        """The transitions of some contacts (None: all) stamped with the instant the
        projection has reached."""
        # Transitions are written in order of instant (the projector's time only moves
        # forward; the set-wise replay writes the latest instant last): those of the latest
        # instant are the newest, found from the end without an index on `at`.
        (before,) = self.conn.execute(
            "SELECT coalesce(max(id), 0) FROM (SELECT id FROM transitions WHERE at < ?"
            " ORDER BY id DESC LIMIT 1)",
            (instant,),
        ).fetchone()
        query = f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE id > ? AND at = ?"
        if contacts is None:
            rows = self.conn.execute(query, (before, instant))
        else:
            # `+contact_id`: read the newest ids, not every transition the contacts ever had.
            rows = self.conn.execute(
                query + " AND +contact_id IN (SELECT value FROM json_each(?))",
                (before, instant, json.dumps(list(contacts))),
            )
        return [_transition(r) for r in rows]

    def last_transition(self, segment_id: str, contact_id: str) -> TransitionRecord | None:
        """A contact's latest transition in a segment."""
        row = self.conn.execute(
            f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE segment_id = ? AND contact_id = ?"
            " ORDER BY at DESC, id DESC LIMIT 1",
            (segment_id, contact_id),
        ).fetchone()
        return _transition(row) if row else None

    def due(self, before: int, limit: int) -> list[MembershipRow]:
        """The rows whose deadline falls before an instant, earliest first."""
        rows = self.conn.execute(
            f"SELECT {_MEMBERSHIP_COLUMNS} FROM memberships WHERE due < ?"
            " ORDER BY due, segment_id, contact_id LIMIT ?",
            (before, limit),
        )
        return _membership_rows(rows)

    def unforeseen(
        self, after: tuple[int, str, str], window: int, limit: int
    ) -> tuple[list[MembershipRow], tuple[int, str, str] | None]:
        """Up to `limit` rows whose deadline has no forecast, among the next `window`
        deadlines in (due, segment, contact) order after the one given; and the key of the
        last deadline looked at (None: the window reached the last deadline)."""
        # The window is walked in SQL: as Python rows, 20,000 deadlines took 30 ms, not 3.
        rows = _membership_rows(
            self.conn.execute(
                f"SELECT {_MEMBERSHIP_COLUMNS} FROM (SELECT {_MEMBERSHIP_COLUMNS}"
                f" FROM memberships WHERE {_AFTER} ORDER BY {_DEADLINE_ORDER} LIMIT ?)"
                f" WHERE then_member IS NULL ORDER BY {_DEADLINE_ORDER} LIMIT ?",
                (*after, window, limit),
            )
        )
        if len(rows) == limit:
            segment_id, contact_id, _, due, _ = rows[-1]
        else:
            end = self.conn.execute(
                f"SELECT segment_id, contact_id, due FROM memberships WHERE {_AFTER}"
                f" ORDER BY {_DEADLINE_ORDER} LIMIT 1 OFFSET ?",
                (*after, window - 1),
            ).fetchone()
            if end is None:
                return rows, None
            segment_id, contact_id, due = end
        assert due is not None
        return rows, (due, segment_id, contact_id)

    def clear_deadlines(self, segment_id: str) -> None:
        """Drop a segment's deadlines."""
        self.conn.execute(
            "DELETE FROM memberships WHERE segment_id = ? AND since IS NULL", (segment_id,)
        )
        self.conn.execute(
            "UPDATE memberships SET due = NULL, then_member = NULL, then_due = NULL"
            " WHERE segment_id = ? AND due IS NOT NULL",
            (segment_id,),
        )

    def next_deadline(self) -> int | None:
        """The earliest deadline."""
        return _next_deadline(self.conn)

    def add_contacts(self, spans: Sequence[tuple[str, int, int]]) -> None:
        """Remember contacts with the earliest and latest occurred_at of their events."""
        self.conn.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?) ON CONFLICT (contact_id) DO UPDATE SET"
            " exists_from = min(exists_from, excluded.exists_from),"
            " last_seen = max(last_seen, excluded.last_seen)",
            spans,
        )

    def assign_values(self, rows: Iterable[tuple[str, str, Any, int, int]]) -> None:
        """(contact, prop, value, occurred_at, position): keep each latest assignment."""
        encoded = (
            (contact, prop, to_json_text(value), o, p) for contact, prop, value, o, p in rows
        )
        self.conn.executemany(
            "INSERT INTO contact_values (contact_id, prop, value, occurred_at, position)"
            f" VALUES (?, ?, ?, ?, ?) {LATEST_WINS}",
            encoded,
        )

    def copy_contact_view(self, build: ContactViewBuild) -> None:
        """Fill the contact view with a build's rows, once it is done."""
        assert isinstance(build, SQLiteContactViewBuild), "a build of this store"
        build.copy_into(self.conn)

    def known_contacts(self, contact_ids: Sequence[str]) -> set[str]:
        """Those of the contacts the projection knows already."""
        rows = self.conn.execute(
            "SELECT contact_id FROM contacts WHERE contact_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(contact_ids)),),
        )
        return {r[0] for r in rows}

    def memberships_of(
        self, contact_ids: Sequence[str], segment_id: str | None = None
    ) -> list[MembershipRow]:
        """The rows of some contacts, in every segment or in one."""
        contacts = json.dumps(list(contact_ids))
        if segment_id is None:
            rows = self.conn.execute(
                f"SELECT {_MEMBERSHIP_COLUMNS} FROM memberships"
                " WHERE contact_id IN (SELECT value FROM json_each(?))",
                (contacts,),
            )
        else:
            rows = self.conn.execute(
                f"SELECT {_MEMBERSHIP_COLUMNS} FROM memberships"
                " WHERE segment_id = ? AND contact_id IN (SELECT value FROM json_each(?))",
                (segment_id, contacts),
            )
        return _membership_rows(rows)

    def write_memberships(self, rows: Sequence[MembershipRow]) -> None:
        """Set each row as given; a row neither member nor with a deadline is removed."""
        kept = [r for r in rows if r[2] is not None or r[3] is not None]
        if kept:
            self.conn.executemany(
                "INSERT INTO memberships VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (segment_id, contact_id) DO UPDATE SET since = excluded.since,"
                " due = excluded.due, then_member = excluded.then_member,"
                " then_due = excluded.then_due",
                map(_membership_values, kept),
            )
        if len(kept) < len(rows):
            self.conn.executemany(
                "DELETE FROM memberships WHERE segment_id = ? AND contact_id = ?",
                (r[:2] for r in rows if r[2] is None and r[3] is None),
            )

    def member_set(self, segment_id: str) -> set[str]:
        """Every current member."""
        rows = self.conn.execute(
            "SELECT contact_id FROM memberships WHERE segment_id = ? AND since IS NOT NULL",
            (segment_id,),
        )
        return {r[0] for r in rows}

    def deadlines_of(self, segment_id: str) -> dict[str, int]:
        """Every contact's deadline in a segment."""
        rows = self.conn.execute(
            "SELECT contact_id, due FROM memberships WHERE segment_id = ? AND due IS NOT NULL",
            (segment_id,),
        )
        return dict(rows)

    def replace_deadlines(self, segment_id: str, deadlines: dict[str, int]) -> None:
        """Set every deadline of a segment at once."""
        self.clear_deadlines(segment_id)
        self.conn.executemany(
            "INSERT INTO memberships (segment_id, contact_id, due) VALUES (?, ?, ?)"
            " ON CONFLICT (segment_id, contact_id) DO UPDATE SET due = excluded.due",
            ((segment_id, contact, due) for contact, due in deadlines.items()),
        )


class SQLiteProjectionStore(SQLiteContactReads):
    """The membership projection in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        durability: str = "process",
        busy_timeout_ms: int = 30_000,
        autocheckpoint: bool = True,
    ) -> None:
        self._connections = Connections(
            path,
            durability=durability,
            busy_timeout_ms=busy_timeout_ms,
            autocheckpoint=autocheckpoint,
        )
        self.path = self._connections.path
        with self._connections.write() as conn:
            db = sqlite_utils.Database(conn)
            db["projection_schema"].create(
                {"name": str, "version": int}, pk="name", if_not_exists=True
            )
            row = conn.execute(
                "SELECT version FROM projection_schema WHERE name = ?", (NAME,)
            ).fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                # Projections are disposable: one of an older shape is dropped, to be
                # rebuilt from the log.
                _drop(conn)
                conn.execute(
                    "INSERT OR REPLACE INTO projection_schema VALUES (?, ?)", (NAME, SCHEMA_VERSION)
                )
            create_schema(db)

    @contextmanager
    def session(self, wait: bool = True) -> Iterator[SQLiteProjectionSession]:
        """A write transaction (the only writer while it lasts); without `wait`, StoreBusy at
        once if another writer holds the database."""
        with self._connections.write(wait) as conn:
            yield SQLiteProjectionSession(conn)

    @contextmanager
    def contact_view_from_log(self, max_position: int) -> Iterator[SQLiteContactViewBuild | None]:
        """Start building the contact view of the log up to a position in the background, if
        the log lives in this file (else None); a session copies it in, or it is dropped."""
        conn = self._connections.get()
        if not log_is_in(conn):
            yield None
            return
        build = SQLiteContactViewBuild(self.path, max_position)
        try:
            yield build
        finally:
            build.close(conn)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _reader(self) -> sqlite3.Connection:
        return self._connections.get()

    def definitions(self) -> list[DefinitionRecord]:
        """Every kept segment definition event, in log order."""
        rows = self._conn().execute(
            "SELECT position, stream, type, recorded_at, data FROM segment_definitions"
            " ORDER BY position"
        )
        return [DefinitionRecord(p, s, t, r, json.loads(d)) for p, s, t, r, d in rows]

    def checkpoint(self) -> tuple[int, int]:
        """(position, instant) last committed."""
        return read_checkpoint(self._conn(), NAME)

    def next_deadline(self) -> int | None:
        """The earliest deadline."""
        return _next_deadline(self._conn())

    def definitions_position(self) -> int:
        """The position of the newest kept definition event, 0 if none."""
        row = self._conn().execute("SELECT max(position) FROM segment_definitions").fetchone()
        return row[0] or 0

    def member_page(self, segment_id: str, after: str | None, limit: int) -> list[tuple[str, int]]:
        """Current members (contact_id, since) in contact order, after a cursor."""
        rows = self._conn().execute(
            "SELECT contact_id, since FROM memberships WHERE segment_id = ? AND contact_id > ?"
            " AND since IS NOT NULL ORDER BY contact_id LIMIT ?",
            (segment_id, after or "", limit),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def member_count(self, segment_id: str) -> int:
        """How many members a segment has now."""
        return (
            self._conn()
            .execute(
                "SELECT coalesce(max(members), 0) FROM member_counts WHERE segment_id = ?",
                (segment_id,),
            )
            .fetchone()[0]
        )

    def members_among(self, segment_id: str, contact_ids: Sequence[str]) -> set[str]:
        """Which of some contacts are members now."""
        rows = self._conn().execute(
            "SELECT contact_id FROM memberships WHERE segment_id = ? AND since IS NOT NULL"
            " AND contact_id IN (SELECT value FROM json_each(?))",
            (segment_id, json.dumps(list(contact_ids))),
        )
        return {contact for (contact,) in rows}

    def is_member(self, segment_id: str, contact_id: str) -> bool:
        """Whether a contact is a member now."""
        row = (
            self._conn()
            .execute(
                "SELECT since FROM memberships WHERE segment_id = ? AND contact_id = ?",
                (segment_id, contact_id),
            )
            .fetchone()
        )
        return row is not None and row[0] is not None

    def contact_segments(self, contact_id: str) -> list[tuple[str, int]]:
        """(segment_id, since) of the segments a contact is in now."""
        rows = self._conn().execute(
            "SELECT segment_id, since FROM memberships WHERE contact_id = ?"
            " AND since IS NOT NULL ORDER BY segment_id",
            (contact_id,),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def transition_page(
        self, segment_id: str, contact_id: str | None, after: int, limit: int
    ) -> list[TransitionRecord]:
        """A segment's transitions in order of id, optionally for one contact."""
        sql = f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE segment_id = ? AND id > ?"
        params: list = [segment_id, after]
        if contact_id is not None:
            sql += " AND contact_id = ?"
            params.append(contact_id)
        rows = self._conn().execute(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [_transition(r) for r in rows]

    def all_transitions(self) -> Iterator[TransitionRecord]:
        """Every transition, in a canonical order (ids aside)."""
        return self._transitions(self._conn())

    def all_members(self) -> Iterator[tuple[str, str, int]]:
        """Every (segment_id, contact_id, since), in a canonical order."""
        return self._members(self._conn())

    @staticmethod
    def _transitions(conn: sqlite3.Connection) -> Iterator[TransitionRecord]:
        rows = conn.execute(
            f"SELECT {_TRANSITION_COLUMNS} FROM transitions"
            " ORDER BY segment_id, contact_id, at, kind"
        )
        return (_transition(row) for row in rows)

    @staticmethod
    def _members(conn: sqlite3.Connection) -> Iterator[tuple[str, str, int]]:
        rows = conn.execute(
            "SELECT segment_id, contact_id, since FROM memberships WHERE since IS NOT NULL"
            " ORDER BY segment_id, contact_id"
        )
        return (tuple(row) for row in rows)  # type: ignore[misc]

    @contextmanager
    def snapshot(
        self,
    ) -> Iterator[
        tuple[tuple[int, int], Iterator[TransitionRecord], Iterator[tuple[str, str, int]]]
    ]:
        """The checkpoint, transitions and members, all read from one consistent snapshot."""
        with self._connections.read() as conn:
            yield read_checkpoint(conn, NAME), self._transitions(conn), self._members(conn)

    def reset(self) -> None:
        """Drop everything the projection holds, checkpoint included."""
        with self.session() as session:
            session.clear()

    def close(self) -> None:
        """Release connections."""
        self._connections.close()
