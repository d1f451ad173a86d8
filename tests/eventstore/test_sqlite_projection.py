"""The SQLite membership projection's contact view and its schema upgrades, on real files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore.interface import NewEvent
from eventstore.projection import BY_TIME, Cause, Forecast, TransitionRecord
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SCHEMA_VERSION, SQLiteProjectionStore


def test_the_contact_view_keeps_each_latest_assignment(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with store.session() as s:
        s.add_contacts([("c1", 500, 900), ("c2", 100, 100)])
        s.assign_values(
            [
                ("c1", "country", "DE", 800, 3),
                ("c1", "score", 10, 800, 3),
                ("c2", "country", "FR", 100, 4),
            ]
        )
        s.advance(4, 1000)
    with store.session() as s:
        # A late event (earlier occurred_at) neither moves last_seen back nor wins the view;
        # a tie on occurred_at goes to the later position.
        s.add_contacts([("c1", 200, 300), ("c2", 100, 700)])
        s.assign_values(
            [
                ("c1", "country", "AT", 700, 5),
                ("c1", "score", 11.5, 800, 6),
                ("c2", "country", None, 700, 7),
            ]
        )
        s.advance(7, 1000)

    assert store.first_events(None, None) == {"c1": 200, "c2": 100}
    assert store.last_events(None, None) == {"c1": 900, "c2": 700}
    # Bounds are (after, until]:
    assert store.first_events(100, 200) == {"c1": 200}
    assert store.first_events(None, 199) == {"c2": 100}
    assert store.last_events(700, None) == {"c1": 900}
    assert store.started_by(199) == {"c2"}
    assert store.started_by(200) == {"c1", "c2"}
    assert store.started_by(99) == set()
    assert sorted(store.values_of("country")) == [("c1", '"DE"', 800), ("c2", "null", 700)]
    assert list(store.values_of("score")) == [("c1", "11.5", 800)]
    assert list(store.values_of("city")) == []
    # Grouped by value for set-wise questions; a value set after the instant asked about
    # leaves its contact to the log.
    assert sorted(store.value_groups("country", 800)[0]) == [('"DE"', ["c1"]), ("null", ["c2"])]
    assert store.value_groups("country", 750) == ([("null", ["c2"])], ["c1"])
    # Or the distinct values first, then only the contacts of the values asked for.
    assert sorted(store.value_texts("country", 800)) == ['"DE"', "null"]
    assert store.holders("country", 800, ['"DE"']) == (["c1"], [])
    assert store.holders("country", 800, []) == ([], [])
    assert store.value_texts("country", 750) == ["null"]
    assert store.holders("country", 750, ['"DE"', "null"]) == (["c2"], ["c1"])
    store.close()


def test_a_projection_of_an_older_shape_is_dropped_to_be_rebuilt(tmp_path):
    path = tmp_path / "p.db"
    store = SQLiteProjectionStore(path)
    with store.session() as s:
        s.add_contacts([("c1", 1, 2)])
        s.write_memberships([("seg", "c1", 2, None, None)])
        s.advance(9, 10)
    store.close()

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE projection_schema SET version = ?", (SCHEMA_VERSION - 1,))
        conn.execute("CREATE TABLE members (segment_id TEXT, contact_id TEXT, since INTEGER)")
    conn.close()
    store = SQLiteProjectionStore(path)
    assert store.checkpoint() == (0, 0)
    assert store.contacts() == [] and store.member_count("seg") == 0
    store.close()
    with sqlite3.connect(path) as conn:
        # A table only an older shape had goes with it.
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'members'").fetchone()
    conn.close()

    # The same shape again: nothing is dropped.
    store = SQLiteProjectionStore(path)
    with store.session() as s:
        s.add_contacts([("c1", 1, 2)])
        s.advance(1, 2)
    store.close()
    store = SQLiteProjectionStore(path)
    assert store.checkpoint() == (1, 2) and store.contacts() == ["c1"]
    store.close()


def test_the_transitions_of_the_latest_instant_for_some_contacts_or_all(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with store.session() as s:
        s.insert_transitions(
            [
                ("s", "c1", "entered", 100, 1, "event", 1),
                ("s", "c1", "exited", 200, 1, "time", None),
                ("s", "c2", "entered", 200, 1, "event", 2),
                ("t", "c3", "entered", 200, 1, "event", 2),
            ]
        )
        s.advance(2, 200)
    with store.session() as s:
        assert [(x.segment_id, x.contact_id) for x in s.transitions_at(200)] == [
            ("s", "c1"),
            ("s", "c2"),
            ("t", "c3"),
        ]
        assert [(x.contact_id, x.kind) for x in s.transitions_at(200, ["c1", "c3"])] == [
            ("c1", "exited"),
            ("c3", "entered"),
        ]
        assert s.transitions_at(200, ["c4"]) == []
        assert s.transitions_at(200, []) == []
    store.close()


def test_a_page_of_transitions_costs_the_page_not_the_segment(tmp_path):
    """A busy segment holds a million transitions: a page after a cursor, for the segment or
    for one contact, is read from an index in id order, not sorted out of the whole lot."""
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with store.session() as s:
        s.insert_transitions(
            (segment, f"c{i % 500}", "entered", i, 1, "event", i)
            for i in range(20_000)
            for segment in ("s", "t")
        )
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._conn().set_progress_handler(count, 100)  # called every 100 VM instructions
    for contact in (None, "c7"):
        steps = 0
        page = store.transition_page("s", contact, 30_000, 10)
        assert len(page) == 10 and [t.id for t in page] == sorted(t.id for t in page)
        assert all(t.id > 30_000 and t.segment_id == "s" for t in page)
        assert steps < 20, (contact, steps)  # sorting the segment's 20,000: thousands
    # The latest instant's transitions of a contact: its older ones are not visited.
    with store.session() as s:
        s.insert_transitions(("s", "c0", "entered", 40_000, 1, "event", 1) for _ in range(5_000))
        s.insert_transitions([("s", "c0", "exited", 50_000, 1, "time", None)])
        steps = 0
        assert [t.kind for t in s.transitions_at(50_000, ["c0"])] == ["exited"]
        assert steps < 20, steps
    store.close()


def test_dropping_the_projection_does_not_write_its_pages_again(tmp_path):
    """A replay drops the old projection first. Freed pages written out as zeros (SQLite's
    secure_delete=ON, some builds' default) cost as much I/O as the projection's size."""
    path = tmp_path / "p.db"
    store = SQLiteProjectionStore(path)
    with store.session() as s:
        s.insert_transitions(
            (f"segment-{i % 20}", f"contact-{i:07d}", "entered", i, 1, "event", i)
            for i in range(100_000)
        )
    conn = store._conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    store.reset()
    wal = Path(f"{path}-wal").stat().st_size // conn.execute("PRAGMA page_size").fetchone()[0]
    assert wal < pages / 10, (wal, pages)
    store.close()


def test_a_clear_shows_only_once_committed(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    reader = SQLiteProjectionStore(tmp_path / "p.db")
    with store.session() as s:
        s.insert_transitions([("s", "c", "entered", 1, 1, "event", 1)])
        s.advance(5, 10)
    with pytest.raises(RuntimeError), store.session() as s:
        s.clear()
        assert (s.position, s.instant) == (0, 0)
        assert reader.checkpoint() == (5, 10)  # another connection: as it was
        assert reader.member_count("s") == 1
        raise RuntimeError("the replay fails")
    assert store.checkpoint() == (5, 10)
    assert len(list(store.all_transitions())) == 1
    with store.session() as s:
        s.clear()
    assert reader.checkpoint() == (0, 0)
    assert list(reader.all_transitions()) == []


def test_member_counts_are_entries_minus_exits(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with store.session() as s:
        s.insert_transitions(
            [
                ("s", "c1", "entered", 100, 1, "event", 1),
                ("s", "c2", "entered", 100, 1, "event", 1),
                ("t", "c1", "entered", 100, 1, "event", 1),
                ("s", "c1", "exited", 200, 1, "time", None),
            ]
        )
        s.write_transitions(
            [
                TransitionRecord("s", "c3", "entered", 300, 1, Cause("event", 2), 5),
                TransitionRecord("t", "c1", "exited", 300, 1, Cause("event", 2), 6),
            ]
        )
        undone = s.add_transition(TransitionRecord("u", "c1", "entered", 300, 1, BY_TIME))
    assert [store.member_count(x) for x in "stuv"] == [2, 0, 1, 0]
    with store.session() as s:
        s.delete_transition(undone)  # an entry taken back: one member fewer
        s.delete_transition(6)  # an exit taken back: one more
        s.delete_transition(99)  # none such: nothing changes
    assert [store.member_count(x) for x in "stuv"] == [2, 1, 0, 0]
    store.close()


def test_one_row_holds_a_membership_and_its_deadline(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    ahead = Forecast(False, None)
    with store.session() as s:
        s.write_memberships(
            [
                ("s", "member", 10, None, None),
                ("s", "leaving", 20, 500, ahead),
                ("s", "coming", None, 400, None),
                ("t", "member", 30, None, None),
            ]
        )
        s.advance(1, 100)
    assert store.is_member("s", "leaving")
    assert not store.is_member("s", "coming")
    assert store.members_among("s", ["member", "coming", "leaving", "nobody"]) == {
        "member",
        "leaving",
    }
    assert store.member_page("s", None, 10) == [("leaving", 20), ("member", 10)]
    assert store.contact_segments("member") == [("s", 10), ("t", 30)]
    assert store.next_deadline() == 400
    with store.session() as s:
        assert s.due(500, 10) == [("s", "coming", None, 400, None)]
        assert [row[1] for row in s.due(501, 10)] == ["coming", "leaving"]
        assert s.deadlines_of("s") == {"coming": 400, "leaving": 500}
        assert sorted(s.memberships_of(["leaving", "coming"])) == [
            ("s", "coming", None, 400, None),
            ("s", "leaving", 20, 500, ahead),
        ]
        assert sorted(s.memberships_of(["member", "coming"])) == [
            ("s", "coming", None, 400, None),
            ("s", "member", 10, None, None),
            ("t", "member", 30, None, None),
        ]
        assert s.memberships_of(["member", "coming"], "t") == [("t", "member", 30, None, None)]
        # Neither a member nor with a deadline: the row goes.
        s.write_memberships([("s", "leaving", None, None, None), ("s", "coming", 400, None, None)])
        assert s.memberships_of(["leaving"]) == []
        assert s.member_set("s") == {"member", "coming"}
        s.replace_deadlines("s", {"member": 700, "new": 800})
        assert s.deadlines_of("s") == {"member": 700, "new": 800}
        assert s.member_set("s") == {"member", "coming"}
        s.clear_deadlines("s")
        assert s.deadlines_of("s") == {} and s.member_set("s") == {"member", "coming"}
        assert s.memberships_of(["new"]) == [] and s.next_deadline() is None


def test_the_deadlines_without_a_forecast_are_found_in_windows_after_a_key(tmp_path):
    store = SQLiteProjectionStore(tmp_path / "p.db")
    ahead = Forecast(True, None)
    with store.session() as s:
        s.write_memberships(
            [
                ("s", "a", 10, 500, None),
                ("s", "b", None, 400, ahead),
                ("s", "c", None, 400, None),
                ("t", "a", None, 400, None),
                ("t", "b", 10, None, None),
                ("t", "c", None, 600, ahead),
            ]
        )
        # In deadline order: (400 s b), (400 s c), (400 t a), (500 s a), (600 t c).
        start = (0, "", "")
        assert s.unforeseen(start, 10, 10) == (
            [("s", "c", None, 400, None), ("t", "a", None, 400, None), ("s", "a", 10, 500, None)],
            None,
        )
        assert s.unforeseen(start, 10, 1) == ([("s", "c", None, 400, None)], (400, "s", "c"))
        assert s.unforeseen(start, 1, 10) == ([], (400, "s", "b"))
        assert s.unforeseen((400, "s", "c"), 3, 10) == (
            [("t", "a", None, 400, None), ("s", "a", 10, 500, None)],
            (600, "t", "c"),
        )
        assert s.unforeseen((500, "s", "a"), 2, 10) == ([], None)
        s.write_memberships([("s", "a", 10, 500, Forecast(False, None))])
        assert s.unforeseen((400, "t", "a"), 10, 10) == ([], None)


def _log_with_views(path, contacts: int) -> SQLiteEventStore:
    log = SQLiteEventStore(path, lambda: 1_000)
    log.append(
        [
            NewEvent(f"e{i}", f"contact:c{i}", "contact_updated", {"n": i, "s": "x"}, 500)
            for i in range(contacts)
        ]
    )
    return log


def _log_with_many_views(path, contacts: int) -> None:
    """Contacts with ten properties each, written straight in SQL (fast to make; long
    enough to build that a build left unused is still running when it is dropped)."""
    SQLiteEventStore(path, lambda: 1_000).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO events SELECT i, 'e' || i, 'contact:c' || i, 1, 'contact_updated',"
            " 500, 1000, json_object('n', i, 'b', i, 'c', i, 'd', i, 'e', i, 'f', i, 'g', i,"
            " 'h', i, 'i', i, 'j', i) FROM n",
            (contacts,),
        )


def test_a_contact_view_build_left_unused_is_stopped_and_its_file_removed(tmp_path):
    _log_with_many_views(tmp_path / "p.db", 50_000)
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with store.contact_view_from_log(50_000) as build:
        assert build is not None
    assert isinstance(build._error, sqlite3.OperationalError)
    assert "interrupted" in str(build._error)
    assert [p.name for p in tmp_path.iterdir() if "contact-view-" in p.name] == []
    assert list(store.values_of("n")) == []
    # The connection it was detached from works on.
    with store.contact_view_from_log(50_000) as build, store.session() as s:
        s.copy_contact_view(build)
    assert build._error is None
    assert len(list(store.values_of("n"))) == 50_000


def test_a_failed_contact_view_build_fails_the_copy_and_writes_nothing(tmp_path):
    _log_with_views(tmp_path / "p.db", 3)
    # Not JSON, written past the store (which would refuse it): the build cannot read it.
    with sqlite3.connect(tmp_path / "p.db") as conn:
        conn.execute(
            "INSERT INTO events VALUES (4, 'e4', 'contact:c9', 1, 'contact_updated', 500, 1000,"
            " 'not json')"
        )
    store = SQLiteProjectionStore(tmp_path / "p.db")
    with (
        pytest.raises(sqlite3.OperationalError, match="malformed JSON"),
        store.contact_view_from_log(4) as build,
        store.session() as s,
    ):
        s.copy_contact_view(build)
    assert list(store.values_of("n")) == []
    assert [p.name for p in tmp_path.iterdir() if "contact-view-" in p.name] == []


# A process that starts a build and waits inside it until it is killed.
_CRASHING_BUILD = """
import sys, threading
from eventstore.sqlite_projection import SQLiteProjectionStore
store = SQLiteProjectionStore(sys.argv[1])
with store.contact_view_from_log(10**9) as build:
    print(build.scratch, flush=True)
    threading.Event().wait()
"""


def test_a_scratch_file_left_by_a_killed_build_is_removed_by_the_next_one(tmp_path):
    _log_with_views(tmp_path / "p.db", 3)
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_BUILD, str(tmp_path / "p.db")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        theirs = Path(child.stdout.readline().strip())
        assert theirs.exists()
        store = SQLiteProjectionStore(tmp_path / "p.db")
        # While their build runs, ours leaves their file alone.
        with store.contact_view_from_log(3) as build, store.session() as s:
            s.copy_contact_view(build)
        assert theirs.exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert theirs.exists()  # nothing of theirs ran on to remove it
    with store.contact_view_from_log(3) as build:
        assert build is not None and not theirs.exists()
    assert [p.name for p in tmp_path.iterdir() if "contact-view-" in p.name] == []
    assert len(list(store.values_of("n"))) == 3
