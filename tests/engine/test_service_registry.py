"""Segment definitions as the service hands them out: copies, which readers get without waiting
for a catch-up running in another thread; and as it changes them: each change decided on all
of them as the log has them, whatever other threads and processes do at the same time."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from engine.errors import Conflict, InvalidRule, NotYetApplied, VersionMismatch
from engine.replay import verify
from engine.service import ContactEvent, Service
from eventstore.interface import NewEvent, StoreBusy
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from grammar import parse, to_json
from tests.clock import START, Clock, TurnClock


class HeldClock(Clock):
    """A clock that, once `hold` is set, keeps the next thread that reads it waiting: a
    catch-up that reads it holds the service's lock for as long as a long one would."""

    def __init__(self, now: int) -> None:
        super().__init__(now)
        self.hold = threading.Event()
        self.waiting = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> int:
        if self.hold.is_set():
            self.hold.clear()
            self.waiting.set()
            self.release.wait(10)
        return self.now


def a_service(tmp_path, clock: Clock) -> Service:
    return Service(
        SQLiteEventStore(tmp_path / "s.db", clock), SQLiteProjectionStore(tmp_path / "s.db"), clock
    )


def test_definitions_are_read_while_another_thread_catches_up(tmp_path):
    clock = HeldClock(START)
    service = a_service(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.ingest([ContactEvent("c1", "email_opened")])
    service = a_service(tmp_path, clock)  # a restarted service, whose first catch-up is slow

    clock.hold.set()
    catching_up = threading.Thread(target=service.catch_up)
    catching_up.start()
    assert clock.waiting.wait(5)  # the catch-up holds the lock now
    read: list[list[str]] = []
    reader = threading.Thread(target=lambda: read.append([s.id for s in service.segments()]))
    reader.start()
    reader.join(5)
    finished_first = not reader.is_alive()
    clock.release.set()
    catching_up.join(5)
    reader.join(5)
    assert finished_first, "the read waited for the catch-up"
    assert read == [["openers"]]


def test_a_registry_handed_out_stays_as_it_was(tmp_path):
    clock = Clock(START)
    service = a_service(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    before = service.registry
    clock.now += 1000
    service.change_rule("openers", "opened email within 3 days")
    service.define_segment("Buyers", "purchased within 30 days")
    assert before.get("openers").version == 1 and before.get("buyers") is None
    after = service.registry
    assert after.get("openers").version == 2 and after.get("buyers") is not None
    assert service.registry is after  # copied again only when definitions change


def test_two_rule_changes_at_once_never_make_a_cycle(tmp_path):
    """Each change alone is fine; together they would make openers and clickers refer to each
    other. Whichever comes second must see the first and be refused."""
    clock = Clock(START)
    service = a_service(tmp_path, clock)
    outcomes = []
    for trial in range(20):
        a, b = f"a{trial}", f"b{trial}"
        service.define_segment(a, "opened email")
        service.define_segment(b, "clicked email")
        start = threading.Barrier(2)
        results: dict[str, str] = {}

        def change(segment: str, other: str, start=start, results=results) -> None:
            start.wait()
            try:
                service.change_rule(segment, f'in segment "{other}"')
                results[segment] = "changed"
            except InvalidRule as exc:
                assert "cycle" in exc.problems[0].message
                results[segment] = "refused"

        threads = [
            threading.Thread(target=change, args=(a, b)),
            threading.Thread(target=change, args=(b, a)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        outcomes.append(sorted(results.values()))
    assert outcomes == [["changed", "refused"]] * 20
    service.ingest([ContactEvent("c1", "email_opened")])  # the service still works


def _first(service: Service, meanwhile) -> None:
    """Make another process's definition land between this service's decision and its append
    (a test seam around the real store's append)."""
    append = service.log.append

    def append_after_the_other(*args, **kwargs):
        service.log.append = append  # once
        meanwhile()
        return append(*args, **kwargs)

    service.log.append = append_after_the_other


def test_a_definition_decided_before_another_process_defined_something_is_refused(tmp_path):
    clock = Clock(START)
    one, two = a_service(tmp_path, clock), a_service(tmp_path, clock)
    one.define_segment("A", "opened email")
    one.define_segment("B", "clicked email")
    _first(two, lambda: one.change_rule("a", 'in segment "b"'))
    with pytest.raises(Conflict, match="changed meanwhile"):
        two.change_rule("b", 'in segment "a"')  # decided when A read no segment
    assert [s.current.text for s in one.segments()] == ['in segment "b"', "clicked email"]
    two.ingest([ContactEvent("c1", "email_clicked")])  # both still work
    one.ingest([ContactEvent("c1", "email_opened")])

    # An archive decided while nothing referred to the segment, and a reference to it made
    # meanwhile: one of them must be refused.
    one.define_segment("C", "opened email")
    _first(two, lambda: one.define_segment("D", 'in segment "c"'))
    with pytest.raises(Conflict):
        two.archive("c")
    assert one.segment("c").archived_at is None


def test_a_change_refused_for_another_process_s_change_of_the_same_segment_is_a_412(tmp_path):
    clock = Clock(START)
    one, two = a_service(tmp_path, clock), a_service(tmp_path, clock)
    one.define_segment("A", "opened email")
    two.catch_up()
    _first(two, lambda: one.change_rule("a", "clicked email", if_match=1))
    with pytest.raises(VersionMismatch) as info:
        two.change_rule("a", "purchased", if_match=1)
    assert (info.value.expected, info.value.actual) == (1, 2)

    # An archive guarded by the version it read, likewise.
    _first(two, lambda: one.change_rule("a", "purchased", if_match=2))
    with pytest.raises(VersionMismatch) as info:
        two.archive("a", if_match=2)
    assert (info.value.expected, info.value.actual) == (2, 3)
    assert one.segment("a").archived_at is None


def test_a_cycle_an_older_version_let_into_the_log_leaves_the_later_change_without_effect(
    tmp_path,
):
    clock = Clock(START)
    service = a_service(tmp_path, clock)
    service.define_segment("A", "opened email")
    service.define_segment("B", "clicked email")
    # Two crossed changes, each fine alone, as versions before 2026-11-24 could append them.
    for segment, other in (("a", "b"), ("b", "a")):
        rule = f'in segment "{other}"'
        data = {"rule": rule, "ast": to_json(parse(rule)), "references": {other: other}}
        change = NewEvent(f"x-{segment}", f"segment:{segment}", "segment_rule_changed", data)
        service.log.append([change])
    clock.now += 1000
    service.ingest([ContactEvent("c1", "email_clicked")])
    assert [m.contact_id for m in service.members("a")[0]] == ["c1"]
    assert service.segment("b").current.text == "clicked email"  # its change never took
    scratch = SQLiteProjectionStore(tmp_path / "scratch.db")
    assert verify(service.log, service.projection, scratch).ok


def test_writes_wait_for_another_thread_s_catch_up_no_longer_than_a_busy_database(tmp_path):
    clock = HeldClock(START)
    log = SQLiteEventStore(tmp_path / "s.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "s.db"), clock, wait_ms=200)
    service.define_segment("Openers", "opened email")
    clock.hold.set()
    catching_up = threading.Thread(target=service.catch_up)  # a long backlog, say
    catching_up.start()
    assert clock.waiting.wait(5)
    try:
        with pytest.raises(NotYetApplied) as stored:
            service.ingest([ContactEvent("c1", "email_opened", event_id="e1")])
        assert stored.value.busy and stored.value.stored[0].position == 2
        with pytest.raises(StoreBusy):
            service.define_segment("Clickers", "clicked email")  # decided on nothing yet
        assert log.last_position() == 2
        # Reads of membership now wait no longer either (they used to wait it out).
        for read in (
            lambda: service.members("openers"),
            lambda: service.contact_segments("c1"),
            lambda: service.transitions("openers"),
            lambda: service.preview("opened email"),
        ):
            with pytest.raises(StoreBusy):
                read()
    finally:
        clock.release.set()
        catching_up.join(5)
    assert [m.contact_id for m in service.members("openers")[0]] == ["c1"]


def test_requests_answer_at_once_while_a_backlog_is_caught_up_in_turns(tmp_path):
    clock = TurnClock(START)
    log = SQLiteEventStore(tmp_path / "s.db", clock)
    service = Service(
        log, SQLiteProjectionStore(tmp_path / "s.db"), clock, wait_ms=60_000, backlog_after_ms=0
    )
    service.define_segment("Openers", "opened email within 1 day")
    for i in range(300):  # exits due one second apart, a day later
        clock.now = START + i * 1000
        service.ingest([ContactEvent(f"c{i}", "email_opened", event_id=f"e{i}")])
    service.projector.deadline_slice = 50
    clock.now = START + 2 * 86_400_000  # the service was down meanwhile

    def catch_up() -> None:
        clock.thread = threading.get_ident()
        service.catch_up_in_turns()

    scheduler = threading.Thread(target=catch_up)
    scheduler.start()
    try:
        assert clock.paused.wait(5)  # one slice done, the lock free, 250 exits to go
        assert service.backlog_since == START + 2 * 86_400_000
        # Neither waits for the lock (60 s here): events are stored, a read is busy.
        with pytest.raises(NotYetApplied, match="backlog") as stored:
            service.ingest([ContactEvent("new", "email_opened", event_id="late")])
        assert stored.value.busy and stored.value.stored[0].position == 302
        with pytest.raises(StoreBusy, match="backlog"):
            service.members("openers")
        with pytest.raises(StoreBusy, match="backlog"):
            service.define_segment("Clickers", "clicked email")
        assert service.explain("openers", "c0").value is False  # from the log: no wait
        assert service.foresee() == (0, False)  # idle-time work waits for the backlog's end
    finally:
        clock.go.set()
        scheduler.join(10)
    assert service.backlog_since is None
    assert [m.contact_id for m in service.members("openers")[0]] == ["new"]
    scratch = SQLiteProjectionStore(tmp_path / "scratch.db")
    assert verify(service.log, service.projection, scratch).ok


def test_requests_stop_waiting_a_backlog_in_the_middle_of_a_long_turn(tmp_path):
    clock = Clock(START)
    path = tmp_path / "s.db"
    log = SQLiteEventStore(path, clock)
    service = Service(log, SQLiteProjectionStore(path), clock, wait_ms=3_000)
    service.define_segment("Openers", "opened email within 1 day")
    service.ingest([ContactEvent("c1", "email_opened", event_id="e1")])
    clock.now = START + 2 * 86_400_000  # down meanwhile: an exit fell due
    # Another writer keeps the first turn from committing: a slice that takes long.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    scheduler = threading.Thread(target=service.catch_up_in_turns)
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while service._lock.acquire(blocking=False):  # until the turn holds the service
            service._lock.release()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert service.backlog_since is None  # not a second yet: requests would wait
        clock.advance(service.backlog_after_ms)
        assert service.backlog_since == START + 2 * 86_400_000
        # Busy at once, not after waiting the turn out (3 s here; a slice takes ten).
        with pytest.raises(StoreBusy, match="backlog"):
            service.members("openers")
    finally:
        other.execute("ROLLBACK")
        scheduler.join(10)
    assert service.backlog_since is None
    assert service.members("openers")[0] == []
