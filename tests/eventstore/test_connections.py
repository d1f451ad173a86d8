"""The SQLite connections' write transactions, on a real file."""

from __future__ import annotations

import sqlite3
import time

import pytest

from eventstore.connections import Connections
from eventstore.interface import StoreBusy


def test_a_commit_that_fails_is_rolled_back_and_the_connection_writes_again(tmp_path):
    """A COMMIT can fail after every statement succeeded (here a deferred constraint; on a
    server, a full disk): the transaction must not stay open, or every later BEGIN on this
    thread's connection fails with 'cannot start a transaction within a transaction'."""
    connections = Connections(tmp_path / "c.db", durability="process", busy_timeout_ms=100)
    conn = connections.get()
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY,"
        " parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), connections.write() as c:
        c.execute("INSERT INTO child VALUES (1, 99)")  # checked only at COMMIT
    assert not conn.in_transaction
    with connections.write() as c:
        c.execute("INSERT INTO parent VALUES (1)")
    assert conn.execute("SELECT count(*) FROM child").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM parent").fetchone() == (1,)
    connections.close()


def test_a_write_that_may_not_wait_is_refused_at_once_and_the_next_one_waits_again(tmp_path):
    connections = Connections(tmp_path / "c.db", durability="process", busy_timeout_ms=5_000)
    conn = connections.get()
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    began = time.monotonic()
    with pytest.raises(StoreBusy), connections.write(wait=False):
        pass
    assert time.monotonic() - began < 1
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5_000,)
    other.execute("COMMIT")
    with connections.write(wait=False) as c:
        c.execute("CREATE TABLE t (x)")
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5_000,)
    other.close()
    connections.close()


def test_a_new_database_is_readable_by_its_owner_only_and_an_old_one_kept_as_it_is(tmp_path):
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    old.touch(mode=0o644)
    for path in (new, old):
        connections = Connections(path)
        with connections.write() as conn:
            conn.execute("CREATE TABLE t (x)")
            files = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.glob(f"{path.name}*")}
        connections.close()
        expected = 0o600 if path == new else 0o644
        assert files == {path.name + suffix: expected for suffix in ("", "-wal", "-shm")}
