"""The projector pauses Python's cycle collector only while it works."""

from __future__ import annotations

import gc

import pytest

from engine.service import ContactEvent, Service
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore

START = 1_767_225_600_000


def clock() -> int:
    return START


def test_the_collector_runs_again_after_work_and_after_a_failure(tmp_path):
    service = Service(
        SQLiteEventStore(tmp_path / "s.db", clock), SQLiteProjectionStore(tmp_path / "s.db"), clock
    )
    seen = []
    service.projector._in_session(lambda _: seen.append(gc.isenabled()))
    service.define_segment("Openers", "opened email within 2 days")
    service.ingest([ContactEvent("c1", "email_opened")])
    assert seen == [False] and gc.isenabled()

    with pytest.raises(ZeroDivisionError):
        service.projector._in_session(lambda _: 1 / 0)
    assert gc.isenabled()

    gc.disable()  # a caller that turned it off keeps it off
    try:
        service.projector._in_session(lambda _: None)
        assert not gc.isenabled()
    finally:
        gc.enable()
