"""The contact view rebuilt from the log in a thread of its own, while the rest of a rebuild
is computed: each property's latest assignment, from the `contact_updated` events.

SQLite does the whole build in one statement, which runs without Python's lock, so it takes
a core the rebuild does not use. It writes into a scratch file next to the database (the
rebuild's transaction holds the database's single writer lock meanwhile); a session then
copies the finished table in, in key order, a fraction of the build's time.

A process killed mid-build leaves its scratch file behind; the next build removes it. Builds
hold a lock file shared while their scratch files exist, so a build that can take it
exclusively knows every scratch file of that database is abandoned (flock: across processes,
released by the kernel when a process dies).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path

from eventstore.sqlite import to_json_text
from eventstore.sqlite_population import CONTACT_PREFIX_LENGTH, CONTACT_STREAMS

# Each property's latest assignment (by occurred_at, then position).
CONTACT_VALUES_COLUMNS = (
    "(prop TEXT NOT NULL, contact_id TEXT NOT NULL, value TEXT NOT NULL,"
    " occurred_at INTEGER NOT NULL, position INTEGER NOT NULL,"
    " PRIMARY KEY (prop, contact_id)) WITHOUT ROWID"
)

# Of two assignments of a property, the later by occurred_at, then by position, is kept.
LATEST_WINS = (
    "ON CONFLICT (prop, contact_id) DO UPDATE SET value = excluded.value,"
    " occurred_at = excluded.occurred_at, position = excluded.position"
    " WHERE (excluded.occurred_at, excluded.position)"
    " > (contact_values.occurred_at, contact_values.position)"
)

_SCRATCH = "contact_view_build"
# The same text as to_json_text gives: SQLite writes strings, integers and literals as Python
# does; numbers with a fraction or beyond 64 bits and nested values, which it would write
# differently, are written by Python (rare in contact properties). In order of contact, so
# that each property's rows are appended to the b-tree.
_BUILD = (
    f"INSERT INTO {_SCRATCH}.contact_values (prop, contact_id, value, occurred_at, position)"
    f" SELECT j.key, substr(e.stream, {CONTACT_PREFIX_LENGTH + 1}), CASE j.type"
    " WHEN 'text' THEN json_quote(j.value) WHEN 'true' THEN 'true'"
    " WHEN 'false' THEN 'false' WHEN 'null' THEN 'null'"
    # An integer beyond 64 bits is read as a real: Python writes it.
    " WHEN 'integer' THEN iif(typeof(j.value) = 'integer', CAST(j.value AS TEXT),"
    " python_json(e.data, j.key)) ELSE python_json(e.data, j.key) END,"
    " e.occurred_at, e.position"
    " FROM main.events AS e, json_each(e.data) AS j"
    " WHERE e.type = 'contact_updated' AND e.position <= ?"
    f" AND {CONTACT_STREAMS}"
    f" ORDER BY e.stream, e.occurred_at, e.position {LATEST_WINS}"
)


def _python_json(data: str, prop: str) -> str:
    return to_json_text(json.loads(data)[prop])


def log_is_in(conn: sqlite3.Connection) -> bool:
    """Whether the event log lives in the connection's main database."""
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()
    )


def _scratch_prefix(db: Path) -> str:
    return f".{db.name}.contact-view-"


def _hold_scratch_lock(db: Path) -> int:
    """Take the database's scratch lock shared (a descriptor to close), first removing the
    scratch files that builds of dead processes left, if no build holds the lock."""
    fd = os.open(db.parent / f".{db.name}.contact-view.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # a build runs: abandoned files wait for a moment when none does
        else:
            prefix = _scratch_prefix(db)
            for name in os.listdir(db.parent):
                if name.startswith(prefix):
                    (db.parent / name).unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


class SQLiteContactViewBuild:
    """The contact view of the log up to a position, being built in the background."""

    def __init__(self, path: str, max_position: int) -> None:
        db = Path(path)
        self._lock = _hold_scratch_lock(db)
        try:
            handle, self.scratch = tempfile.mkstemp(
                prefix=_scratch_prefix(db), suffix=".db", dir=db.parent
            )
        except BaseException:
            os.close(self._lock)
            raise
        os.close(handle)
        self._error: BaseException | None = None
        # Opened and closed by this thread, so that close() can interrupt it without racing
        # its closing (SQLite forbids interrupting a connection that may be closing).
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._thread = threading.Thread(
            target=self._build, args=(max_position,), name="contact-view", daemon=True
        )
        self._thread.start()

    def _build(self, max_position: int) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # A small cache, the sort spilled to files: the rebuild needs the memory more.
            conn.execute("PRAGMA cache_size = -16384")
            conn.create_function("python_json", 2, _python_json, deterministic=True)
            conn.execute(f"ATTACH ? AS {_SCRATCH}", (self.scratch,))
            # A throwaway file: no journal, no syncing.
            conn.execute(f"PRAGMA {_SCRATCH}.journal_mode = OFF")
            conn.execute(f"PRAGMA {_SCRATCH}.synchronous = OFF")
            conn.execute(f"CREATE TABLE {_SCRATCH}.contact_values {CONTACT_VALUES_COLUMNS}")
            conn.execute("BEGIN")
            conn.execute(_BUILD, (max_position,))
            conn.execute("COMMIT")
        except BaseException as exc:  # handed to whoever waits for the build
            self._error = exc

    def copy_into(self, conn: sqlite3.Connection) -> None:
        """Wait for the build, then insert its rows into the connection's contact view (in an
        open transaction; `close` detaches the scratch file once it has ended)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        conn.execute(f"ATTACH ? AS {_SCRATCH}", (self.scratch,))
        conn.execute(
            "INSERT INTO contact_values (prop, contact_id, value, occurred_at, position)"
            f" SELECT prop, contact_id, value, occurred_at, position FROM {_SCRATCH}.contact_values"
            f" WHERE true {LATEST_WINS}"
        )

    def close(self, conn: sqlite3.Connection) -> None:
        """Stop the build if it still runs, detach it from the connection, remove the file."""
        # Again and again until it ends: an interrupt that lands between two statements (or
        # before the first) is lost.
        while self._thread.is_alive():
            self._conn.interrupt()
            self._thread.join(0.01)
        self._conn.close()
        if any(row[1] == _SCRATCH for row in conn.execute("PRAGMA database_list")):
            conn.execute(f"DETACH {_SCRATCH}")
        for suffix in ("", "-journal"):
            Path(self.scratch + suffix).unlink(missing_ok=True)
        os.close(self._lock)
