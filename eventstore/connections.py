"""SQLite connections shared by the log and the projections: one per thread, WAL, explicit
transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from eventstore.interface import StoreBusy

SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}


class Connections:
    """Per-thread connections to one SQLite file (a new one after a fork), in autocommit mode.

    `durability` is "process" (a commit survives a crash of the process: WAL with
    synchronous=NORMAL) or "power" (it also survives losing power: FULL). With
    `autocheckpoint` off, commits never copy the write-ahead log back into the database file
    (SQLite does that on the commit that finds the log over 1,000 pages): whoever turns it off
    calls `checkpoint_wal` from elsewhere, so that no request waits for it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        durability: str = "process",
        busy_timeout_ms: int = 30_000,
        temp_in_memory: bool = False,
        autocheckpoint: bool = True,
    ) -> None:
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability must be one of {sorted(SYNCHRONOUS)}")
        self.path = str(path)
        self._synchronous = SYNCHRONOUS[durability]
        self._busy_timeout_ms = busy_timeout_ms
        self._temp_in_memory = temp_in_memory
        self._autocheckpoint = autocheckpoint
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            _create_private(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # 64 MB of page cache: a batch of random event ids touches thousands of index pages.
            conn.execute("PRAGMA cache_size = -65536")
            # Some builds (Debian's) default to ON, which writes every freed page out as
            # zeros: dropping a 740 MB projection for a replay wrote 740 MB to the WAL (15 s).
            # FAST zeroes deleted content only where that costs no extra I/O.
            conn.execute("PRAGMA secure_delete = FAST")
            if self._temp_in_memory:
                conn.execute("PRAGMA temp_store = MEMORY")
            if not self._autocheckpoint:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (take the single writer's lock now), then COMMIT or ROLLBACK;
        without `wait`, StoreBusy at once if another writer holds the lock."""
        conn = self.get()
        try:
            if not wait:
                conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                waited = self._busy_timeout_ms if wait else 0
                raise StoreBusy(f"another writer held the database for over {waited} ms") from exc
            raise
        finally:
            if not wait:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # Also when COMMIT itself failed (a full disk): SQLite may leave the transaction
            # open, and the writer's lock held, until it is rolled back.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        conn = self.get()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def checkpoint_wal(self) -> tuple[int, int]:
        """Copy what the write-ahead log holds back into the database file, as far as readers
        allow, without waiting for any lock: (pages in the log, pages copied)."""
        _, pages, copied = self.get().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return pages, copied

    def close(self) -> None:
        """Close every connection opened here."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _create_private(path: str) -> None:
    """Create a database file readable by its owner only (it holds every event and the keys'
    digests); SQLite gives its -wal and -shm files the same permissions. One that exists is
    left as it is."""
    if path == ":memory:" or path.startswith("file:"):
        return
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
