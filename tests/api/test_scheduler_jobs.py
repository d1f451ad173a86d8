"""The scheduler's periodic jobs: they run once it starts, and a failure is logged, not fatal."""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from api import create_app, start_background
from api.scheduler import DeadlineScheduler
from engine.service import ContactEvent
from tests.clock import START, Clock


@contextmanager
def running(scheduler: DeadlineScheduler) -> Iterator[None]:
    scheduler.start()
    try:
        yield
    finally:
        scheduler.shutdown()


def test_a_periodic_job_runs_again_after_failing(caplog):
    scheduler = DeadlineScheduler(lambda: None, poll_seconds=60)
    runs: list[int] = []
    again = threading.Event()

    def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise OSError("disk busy")
        again.set()

    scheduler.every(0.05, job, "housekeeping")
    assert runs == []  # nothing runs before the scheduler starts
    with caplog.at_level(logging.ERROR, logger="api.scheduler"), running(scheduler):
        assert again.wait(5)
    assert len(runs) >= 2
    assert "housekeeping failed" in caplog.text


def test_jobs_due_while_a_long_run_lasts_neither_wait_nor_warn(caplog):
    """A catch-up of a long backlog (a minute on the benchmark's log) outlasts many polls and
    WAL checkpoints: those return at once instead of piling up behind it or being logged as
    skipped; when it ends, the job is armed for the deadline it returns."""
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def catch_up() -> int | None:
        calls.append("catch_up")
        started.set()
        release.wait(10)
        return None

    checkpoints: list[int] = []

    def checkpoint() -> None:
        checkpoints.append(1)
        release.wait(10)

    scheduler = DeadlineScheduler(catch_up, poll_seconds=0.05)
    scheduler.every(0.05, checkpoint, "wal-checkpoint")
    with caplog.at_level(logging.WARNING), running(scheduler):
        assert started.wait(5)
        threading.Event().wait(0.5)  # ten polls and ten checkpoints fall due
        assert calls == ["catch_up"] and checkpoints == [1]
        release.set()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_long_catch_up_says_when_it_is_done_and_a_short_one_does_not(caplog):
    lasts = [1.1, 0.0]
    done = threading.Event()

    def catch_up() -> int | None:
        threading.Event().wait(lasts.pop(0) if lasts else 0.0)
        if not lasts:
            done.set()
        return None

    scheduler = DeadlineScheduler(catch_up, poll_seconds=0.1)
    with caplog.at_level(logging.INFO, logger="api.scheduler"), running(scheduler):
        assert done.wait(10)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("caught up with the log and the deadlines")


def test_a_failed_catch_up_is_retried_within_a_second_not_at_the_next_poll(caplog):
    """A write answered "stored, not applied yet" (another process held the database) waits
    for this retry; a lasting failure backs off towards the poll interval."""
    runs: list[float] = []
    applied = threading.Event()

    def catch_up() -> int | None:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise TimeoutError("database is locked")
        applied.set()
        return None

    scheduler = DeadlineScheduler(catch_up, poll_seconds=3600)
    with caplog.at_level(logging.ERROR, logger="api.scheduler"), running(scheduler):
        assert applied.wait(10)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert 0.9 < gaps[0] < 1.9 <= gaps[1] < 30, gaps  # a second, then two; the poll: an hour
    assert "retrying in 1.0 s" in caplog.text


def test_a_later_deadline_does_not_put_off_the_retry_of_a_failed_catch_up():
    """An append arms the job for its new deadline, an hour away, just after a catch-up
    failed: the retry still comes within a second or two, not at that deadline."""
    failed, applied = threading.Event(), threading.Event()

    def catch_up() -> int | None:
        if not failed.is_set():
            failed.set()
            raise TimeoutError("database is locked")
        applied.set()
        return None

    scheduler = DeadlineScheduler(catch_up, poll_seconds=3600)
    with running(scheduler):
        assert failed.wait(5)
        time.sleep(0.2)  # the retry is armed
        scheduler.wake_at(int(time.time() * 1000) + 3_600_000)
        assert applied.wait(5)


def test_the_service_works_out_a_new_rules_forecasts_while_idle(tmp_path):
    # Now, not a fixed instant in the past: the real scheduler would otherwise find the
    # deadline already due, and run the catch-up again and again (the job waits for it).
    clock = Clock(time.time_ns() // 1_000_000)
    app = create_app(
        {"SEGMENTS_DB": str(tmp_path / "s.db"), "CLOCK": clock, "FORESEE_SECONDS": 0.05}
    )
    service = app.extensions["segments"].service
    service.ingest([ContactEvent("c1", "email_opened")])
    service.define_segment("Openers", "opened email within 7 days")

    def unforeseen() -> int:
        # Read aside, not in a write session: that would make the job skip its turn.
        with sqlite3.connect(tmp_path / "s.db") as conn:
            return conn.execute(
                "SELECT count(*) FROM memberships WHERE due IS NOT NULL AND then_member IS NULL"
            ).fetchone()[0]

    assert unforeseen()
    start_background(app)
    try:
        for _ in range(100):
            if not unforeseen():
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the new rule's deadline was not foreseen")
    finally:
        app.extensions["segments"].scheduler.shutdown()


def test_the_foresee_job_stands_aside_while_a_request_is_served(tmp_path):
    clock = Clock(START)
    app = create_app({"SEGMENTS_DB": str(tmp_path / "s.db"), "CLOCK": clock, "SCHEDULER": False})
    service = app.extensions["segments"].service
    service.ingest([ContactEvent("c1", "email_opened")])
    service.define_segment("Openers", "opened email within 7 days")
    with app.test_request_context("/healthz"):
        app.preprocess_request()
        assert service.foresee() == (0, False)
        app.do_teardown_request()
    assert service.foresee() == (1, True)
