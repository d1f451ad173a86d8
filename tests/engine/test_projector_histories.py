"""The projector's cache of contact histories: a history it no longer holds (more contacts
than it keeps, or dropped because another process moved the projection) is read back from
the log, and the events being applied are counted once."""

from __future__ import annotations

from bench.generate import MIXED_SEGMENTS, generate_events, to_new_event
from engine.projector import Projector
from engine.replay import verify
from engine.service import ContactEvent, Service
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from tests.clock import START, Clock


def a_service(tmp_path) -> tuple[Clock, SQLiteEventStore, SQLiteProjectionStore, Service]:
    """A service on a fresh file, with the clock it reads."""
    clock = Clock(START)
    log = SQLiteEventStore(tmp_path / "s.db", clock)
    projection = SQLiteProjectionStore(tmp_path / "s.db")
    return clock, log, projection, Service(log, projection, clock)


def visits(contact: str, n: int) -> NewEvent:
    return NewEvent(f"{contact}-{n}", f"contact:{contact}", "page_viewed", {})


def test_a_history_read_back_from_the_log_counts_each_event_once(tmp_path):
    clock, log, projection, service = a_service(tmp_path)
    service.define_segment("Thrice", "visited page at least 3 times")
    # Keeps one history: each contact's is read back from the log at its next event.
    projector = Projector(log, projection, history_cache=1)
    for n in range(3):
        for contact in ("c0", "c1"):
            clock.now += 1000
            log.append([visits(contact, n)])
            projector.advance(clock.now)
    entered = [(t.contact_id, t.cause.position) for t in projection.all_transitions()]
    assert entered == [("c0", 6), ("c1", 7)]  # at the third visit of each, positions 6 and 7


def test_two_projectors_on_one_projection_count_each_event_once(tmp_path):
    """As two processes do: each finds the projection moved by the other and reads back."""
    clock, log, projection, service = a_service(tmp_path)
    service.define_segment("Thrice", "visited page at least 3 times")
    other = Projector(log, projection)
    for n in range(3):
        clock.now += 1000
        service.ingest([ContactEvent("c0", "page_viewed")])
        clock.now += 1000
        log.append([visits("c0", f"other-{n}")])
        other.advance(clock.now)
        entered = [(t.contact_id, t.cause.position) for t in projection.all_transitions()]
        # The third visit is the service's second event (position 4).
        assert entered == ([] if n < 1 else [("c0", 4)])


def test_on_generated_data_a_small_cache_builds_what_a_replay_builds(tmp_path):
    """Marketing events of 1,000 contacts through a projector that keeps 50 histories: most
    contacts are read back from the log at each of their events."""
    clock, log, projection, service = a_service(tmp_path)
    for name, rule in MIXED_SEGMENTS:
        service.define_segment(name, rule)
    projector = Projector(log, projection, history_cache=50)
    events = [to_new_event(e) for e in generate_events(3, 1_000, 8_000, start=START, days=30)]
    for i in range(0, len(events), 200):
        batch = events[i : i + 200]
        clock.now = max(clock.now, *(e.occurred_at for e in batch))
        log.append(batch)
        projector.advance(clock.now)
    report = verify(log, projection, SQLiteProjectionStore(tmp_path / "replay.db"))
    assert report.transitions > 1_000
    assert report.ok, report.differences
