"""Segment definitions as the service hands them out: copies, which readers get without waiting
for a catch-up running in another thread."""

from __future__ import annotations

import threading

from engine.service import ContactEvent, Service
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from tests.clock import START, Clock


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
