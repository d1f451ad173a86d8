"""The scheduler's periodic jobs: they run once it starts, and a failure is logged, not fatal."""

from __future__ import annotations

import logging
import threading

from api.scheduler import DeadlineScheduler


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
    with caplog.at_level(logging.ERROR, logger="api.scheduler"):
        scheduler.start()
        try:
            assert again.wait(5)
        finally:
            scheduler.shutdown()
    assert len(runs) >= 2
    assert "housekeeping failed" in caplog.text
