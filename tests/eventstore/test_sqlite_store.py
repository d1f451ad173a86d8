"""The recorder contract against SQLiteEventStore on a real file, and what only SQLite has."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from eventstore.interface import StoreBusy
from eventstore.sqlite import SQLiteEventStore
from tests.eventstore.contract import START, EventStoreContract, FakeClock, new


class TestSQLiteEventStore(EventStoreContract):
    child_factory = "eventstore.sqlite:SQLiteEventStore"
    database_error = sqlite3.DatabaseError

    def new_location(self, tmp_path: Path) -> str:
        return str(tmp_path / "events.db")

    def create_store(
        self, path_or_url: str, clock: Callable[[], int], *, page_size: int = 1_000
    ) -> SQLiteEventStore:
        return SQLiteEventStore(path_or_url, clock, page_size=page_size)

    def raw_execute(self, store: SQLiteEventStore, sql: str) -> list[tuple]:
        # A connection of its own: what the database refuses, not what our code avoids.
        with closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
            return conn.execute(sql).fetchall()

    # ---- SQLite only ----

    @pytest.mark.parametrize(
        "sql",
        [
            # REPLACE deletes the conflicting row without firing DELETE triggers.
            "INSERT OR REPLACE INTO events VALUES (1, 'a', 'contact:1', 1, 'forged', 0, 0, '{}')",
            "REPLACE INTO events VALUES (3, 'a', 'contact:9', 1, 'forged', 0, 0, '{}')",
            "INSERT OR REPLACE INTO events VALUES (3, 'c', 'contact:1', 2, 'forged', 0, 0, '{}')",
        ],
        ids=["same-position", "same-event-id", "same-stream-version"],
    )
    def test_the_database_refuses_replacing_a_row(self, store, sql):
        store.append([new("a"), new("b")])
        before = list(store.read())
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            self.raw_execute(store, sql)
        assert list(store.read()) == before

    def test_plain_inserts_through_raw_sql_still_work(self, store):
        # The triggers forbid rewriting history, not appending to it.
        store.append([new("a")])
        self.raw_execute(
            store, "INSERT INTO events VALUES (2, 'b', 'contact:1', 2, 't', 0, 0, '{}')"
        )
        assert store.append([new("c")])[0].position == 3

    def test_a_batch_respects_the_limit_on_sql_variables(self, store):
        # Builds of SQLite may allow as few as 999 variables; rows go in several statements.
        store.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
        receipts = store.append([new(f"e{i}") for i in range(300)])
        assert [r.position for r in receipts] == list(range(1, 301))
        assert [e.event_id for e in store.read()] == [f"e{i}" for i in range(300)]

    def test_the_log_is_in_wal_mode(self, store):
        assert store.connection().execute("PRAGMA journal_mode").fetchone() == ("wal",)

    @pytest.mark.parametrize(("durability", "level"), [("process", 1), ("power", 2)])
    def test_durability_chooses_synchronous(self, tmp_path, durability, level):
        store = SQLiteEventStore(tmp_path / "d.db", FakeClock(), durability=durability)
        try:
            assert store.connection().execute("PRAGMA synchronous").fetchone() == (level,)
            assert store.append([new("a")])[0].recorded_at == START
        finally:
            store.close()

    def test_a_writer_that_waits_too_long_is_told_the_store_is_busy(self, tmp_path):
        store = SQLiteEventStore(tmp_path / "b.db", FakeClock(), busy_timeout_ms=50)
        store.append([new("first")])
        with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process, holding the writer's lock
            with pytest.raises(StoreBusy, match="another writer"):
                store.append([new("second")])
            assert [e.event_id for e in store.read()] == ["first"]  # reads go on
            other.execute("COMMIT")
        store.append([new("second")])
        assert [e.event_id for e in store.read()] == ["first", "second"]
        store.close()

    def test_an_unknown_durability_is_refused(self, tmp_path):
        with pytest.raises(ValueError, match="durability"):
            SQLiteEventStore(tmp_path / "d.db", FakeClock(), durability="eventually")

    @pytest.mark.parametrize("autocheckpoint", [True, False])
    def test_commits_copy_the_wal_back_only_with_autocheckpoint(self, tmp_path, autocheckpoint):
        path = tmp_path / "w.db"
        store = SQLiteEventStore(path, FakeClock(), autocheckpoint=autocheckpoint)
        try:
            empty = path.stat().st_size
            big = {"text": "x" * 2_000}
            for batch in range(10):  # some 6 MB: well over SQLite's 1,000-page threshold
                store.append([new(f"e{batch}-{i}", data=big) for i in range(300)])
            assert (path.stat().st_size > empty) == autocheckpoint
            pages, copied = store.checkpoint_wal()
            assert copied == pages
            assert path.stat().st_size > 6_000_000
        finally:
            store.close()
