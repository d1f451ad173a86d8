"""Deadlines that carry what they bring: settled at their instant without reading the
contact's events, and worked out again when an entry bears on the contact first."""

from __future__ import annotations

import sqlite3
import threading
import time

from engine.projector import FORESEE_STEP, Foresight, Projector
from engine.service import ContactEvent, Service
from engine.timeline import replay_timeline
from eventstore.projection import Forecast
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from tests.clock import DAY, START, Clock


def service_at(tmp_path, clock: Clock) -> Service:
    log = SQLiteEventStore(tmp_path / "live.db", clock)
    return Service(log, SQLiteProjectionStore(tmp_path / "live.db"), clock)


def deadline_row(projection: SQLiteProjectionStore, segment: str, contact: str):
    with projection.session() as session:
        return [
            (s, c, due, forecast)
            for s, c, _, due, forecast in session.memberships_of([contact])
            if s == segment and due is not None
        ]


def history(projection: SQLiteProjectionStore) -> list[tuple]:
    return [
        (t.segment_id, t.contact_id, t.kind, t.at, t.cause) for t in projection.all_transitions()
    ]


def test_a_deadline_knows_the_exit_it_brings(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.ingest([ContactEvent("c1", "email_opened")])
    assert deadline_row(service.projection, "openers", "c1") == [
        ("openers", "c1", START + 7 * DAY, Forecast(False, None))
    ]
    clock.now = START + 8 * DAY
    service.catch_up()
    assert history(service.projection)[-1][2:4] == ("exited", START + 7 * DAY)
    assert deadline_row(service.projection, "openers", "c1") == []


def test_an_event_that_keeps_a_member_in_moves_the_deadline_and_its_forecast(tmp_path):
    """A second open does not change membership, but the exit the deadline foresaw will not
    happen then: the deadline moves to seven days after the second open, still foreseen."""
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.ingest([ContactEvent("c1", "email_opened")])
    clock.now = START + 3 * DAY
    service.ingest([ContactEvent("c1", "email_opened")])
    assert deadline_row(service.projection, "openers", "c1") == [
        ("openers", "c1", START + 10 * DAY, Forecast(False, None))
    ]
    clock.now = START + 7 * DAY
    service.catch_up()
    assert service.projection.is_member("openers", "c1")
    clock.now = START + 11 * DAY
    service.catch_up()
    assert [t[2:4] for t in history(service.projection)] == [
        ("entered", START),
        ("exited", START + 10 * DAY),
    ]


def test_an_event_the_rule_does_not_read_keeps_the_forecast(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.ingest([ContactEvent("c1", "email_opened")])
    clock.now = START + DAY
    service.ingest([ContactEvent("c1", "page_viewed", {"url": "/pricing"})])
    assert deadline_row(service.projection, "openers", "c1")[0][3] == Forecast(False, None)


def test_a_rule_is_not_foreseen_when_a_segment_it_refers_to_changes_at_its_deadline(tmp_path):
    """Both leave at the same instant: the referring rule's value then depends on the other
    segment's change, worked out first at that very instant."""
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.define_segment("Quiet openers", 'in segment "Openers" and not purchased within 2 days')
    service.ingest([ContactEvent("c1", "email_opened")])
    assert deadline_row(service.projection, "quiet-openers", "c1")[0][3] is None
    clock.now = START + 8 * DAY
    service.catch_up()
    assert [t[:4] for t in history(service.projection)] == [
        ("openers", "c1", "entered", START),
        ("openers", "c1", "exited", START + 7 * DAY),
        ("quiet-openers", "c1", "entered", START),
        ("quiet-openers", "c1", "exited", START + 7 * DAY),
    ]


def test_a_rule_is_foreseen_when_the_segments_it_refers_to_change_later(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.define_segment(
        "Quiet openers", 'in segment "Openers" and not clicked email within 1 day'
    )
    service.ingest([ContactEvent("c1", "email_opened"), ContactEvent("c1", "email_clicked")])
    assert deadline_row(service.projection, "quiet-openers", "c1") == [
        ("quiet-openers", "c1", START + DAY, Forecast(True, START + 7 * DAY))
    ]
    clock.now = START + 8 * DAY
    service.catch_up()
    assert [t[:4] for t in history(service.projection) if t[0] == "quiet-openers"] == [
        ("quiet-openers", "c1", "entered", START + DAY),
        ("quiet-openers", "c1", "exited", START + 7 * DAY),
    ]


def test_forecasts_change_nothing_a_plain_evaluation_would_give(tmp_path):
    """A chain of time-driven changes (in and out of both segments, by events dated ahead)
    settled from forecasts equals the one found by evaluating at every deadline."""
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email at least 2 times within 3 days")
    service.define_segment("Dormant", "not opened email within 2 days")
    for day in (0, 1, 5, 6):
        clock.now = START + day * DAY
        # Dated half a day ahead: it counts from then on.
        service.ingest([ContactEvent("c1", "email_opened", occurred_at=clock.now + DAY // 2)])
    clock.now = START + 12 * DAY
    service.catch_up()
    live = history(service.projection)
    assert len(live) >= 6

    plain = SQLiteProjectionStore(tmp_path / "plain.db")
    Projector(service.log, plain, forecasts=False).advance(clock.now)
    assert history(plain) == live

    # Rebuilt set-wise up to the last entry, then carried on by the projector: the
    # timeline's forecasts are settled to the same end.
    rebuilt = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    replay_timeline(service.log, rebuilt, START + 6 * DAY)
    assert deadline_row(rebuilt, "dormant", "c1") == [
        ("dormant", "c1", START + 8 * DAY + DAY // 2, Forecast(True, None))
    ]
    Projector(service.log, rebuilt).advance(clock.now)
    assert history(rebuilt) == live


def test_a_new_rules_deadlines_are_foreseen_ahead_of_time(tmp_path):
    """A segment created over existing contacts is evaluated set-wise: its deadlines come
    without a forecast, and foresee() works them out, earliest first, a few at a time."""
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    for day, contact in enumerate(("c1", "c2", "c3")):
        clock.now = START + day * DAY
        service.ingest([ContactEvent(contact, "email_opened")])
    service.define_segment("Openers", "opened email within 7 days")
    due = {c: START + (7 + day) * DAY for day, c in enumerate(("c1", "c2", "c3"))}
    for contact in due:
        assert deadline_row(service.projection, "openers", contact) == [
            ("openers", contact, due[contact], None)
        ]

    assert service.foresee(limit=2) == Foresight(2, done=False)
    assert deadline_row(service.projection, "openers", "c3")[0][3] is None
    assert service.foresee(limit=2) == Foresight(1, done=True)
    assert service.foresee(limit=2) == Foresight(0, done=True)
    for contact in due:
        assert deadline_row(service.projection, "openers", contact) == [
            ("openers", contact, due[contact], Forecast(False, None))
        ]

    clock.now = START + 20 * DAY
    service.catch_up()
    plain = SQLiteProjectionStore(tmp_path / "plain.db")
    Projector(service.log, plain, forecasts=False).advance(clock.now)
    assert history(plain) == history(service.projection)
    exits = {(t[1], t[3]) for t in history(service.projection) if t[2] == "exited"}
    assert exits == set(due.items())


def test_the_deadline_after_a_foreseen_one_is_foreseen_in_its_turn(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment(
        "Lapsing", "opened email within 3 days and not opened email within 1 day"
    )
    service.ingest([ContactEvent("c1", "email_opened")])
    # In a day after the open, out two days later.
    assert deadline_row(service.projection, "lapsing", "c1") == [
        ("lapsing", "c1", START + DAY, Forecast(True, START + 3 * DAY))
    ]
    clock.now = START + 2 * DAY
    service.catch_up()
    assert deadline_row(service.projection, "lapsing", "c1") == [
        ("lapsing", "c1", START + 3 * DAY, None)
    ]
    assert service.foresee() == Foresight(1, done=True)
    assert deadline_row(service.projection, "lapsing", "c1") == [
        ("lapsing", "c1", START + 3 * DAY, Forecast(False, None))
    ]
    clock.now = START + 4 * DAY
    service.catch_up()
    assert [t[2:4] for t in history(service.projection)] == [
        ("entered", START + DAY),
        ("exited", START + 3 * DAY),
    ]


def test_foresee_passes_over_what_cannot_be_foreseen_and_waits_for_new_work(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.define_segment("Openers", "opened email within 7 days")
    service.define_segment("Quiet openers", 'in segment "Openers" and not purchased within 2 days')
    service.ingest([ContactEvent("c1", "email_opened")])
    # Both leave at once: the referring rule's deadline cannot be foreseen, and is left as is.
    assert service.foresee() == Foresight(1, done=True)
    assert deadline_row(service.projection, "quiet-openers", "c1")[0][3] is None
    assert service.foresee() == Foresight(0, done=True)  # not looked at again: nothing happened

    clock.now = START + DAY
    service.ingest([ContactEvent("c2", "email_opened")])
    service.change_rule("openers", "opened email within 6 days")
    # The new rule's two deadlines, and the two of the rule that refers to it, evaluated
    # again with it: only the first two can be foreseen.
    assert service.foresee() == Foresight(4, done=True)
    assert deadline_row(service.projection, "openers", "c2") == [
        ("openers", "c2", START + 7 * DAY, Forecast(False, None))
    ]
    assert deadline_row(service.projection, "quiet-openers", "c2")[0][3] is None


def test_foresee_gives_way_to_other_work(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    service.ingest([ContactEvent("c1", "email_opened")])
    service.define_segment("Openers", "opened email within 7 days")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with service._lock:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    held.wait(10)
    try:
        assert service.foresee() == Foresight(0, done=False)
    finally:
        release.set()
        worker.join()
    # Nor does it wait for another process's writer (its catch-up can take seconds).
    other = sqlite3.connect(tmp_path / "live.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    began = time.monotonic()
    assert service.foresee() == Foresight(0, done=False)
    assert time.monotonic() - began < 1
    other.execute("COMMIT")
    other.close()
    assert service.foresee() == Foresight(1, done=True)


def test_a_turn_of_foresee_stops_at_its_next_step_when_someone_wants_the_projector(tmp_path):
    clock = Clock(START)
    service = service_at(tmp_path, clock)
    contacts = [f"c{i:02}" for i in range(FORESEE_STEP + 10)]
    service.ingest([ContactEvent(c, "email_opened") for c in contacts])
    service.define_segment("Openers", "opened email within 7 days")
    looks = []

    def wanted() -> bool:
        looks.append(True)
        return len(looks) > 1  # a request came during the first step

    assert service.projector.foresee(1_000, stop=wanted) == Foresight(FORESEE_STEP, done=False)
    assert service.projector.foresee(1_000) == Foresight(10, done=True)
    for contact in contacts:
        assert deadline_row(service.projection, "openers", contact)[0][3] == Forecast(False, None)
