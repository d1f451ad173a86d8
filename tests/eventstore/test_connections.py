"""The SQLite connections' write transactions, on a real file."""

from __future__ import annotations

import sqlite3

import pytest

from eventstore.connections import Connections


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
