"""Time-driven changes: one APScheduler job that wakes at the earliest deadline, processes
everything due, and re-arms itself (never one job per contact)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from api.schemas import LAST_INSTANT

log = logging.getLogger(__name__)
JOB = "deadlines"
LONG_CATCH_UP_SECONDS = 1.0  # a catch-up that took longer says so in the log


class DeadlineScheduler:
    """Runs `catch_up` (which returns the next deadline, in UTC ms) when time comes for it.

    `poll_seconds` also runs it periodically, for deadlines another process created.
    """

    def __init__(self, catch_up: Callable[[], int | None], poll_seconds: float = 30.0) -> None:
        self._catch_up = catch_up
        self._poll_seconds = poll_seconds
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._armed: int | None = None
        self._extra: list[tuple[float, Callable[[], None], str]] = []
        self._retry_seconds = 1.0

    def start(self) -> None:
        """Start, and at once process whatever fell due while the service was down."""
        if self._scheduler.running:
            return
        self._scheduler.start()
        self._every(self._poll_seconds, self._run, "poll")
        self._scheduler.add_job(self._run, id=JOB, misfire_grace_time=None, coalesce=True)
        for seconds, run, job_id in self._extra:
            self._every(seconds, run, job_id)

    def every(self, seconds: float, job: Callable[[], object], job_id: str) -> None:
        """Also run `job` every so many seconds, once started (a failure is logged)."""

        running = threading.Lock()

        def run() -> None:
            if not running.acquire(blocking=False):
                return  # the last run is still at it (a checkpoint of a long catch-up's WAL)
            try:
                job()
            except Exception:
                log.exception("%s failed; it runs again in %s s", job_id, seconds)
            finally:
                running.release()

        self._extra.append((seconds, run, job_id))
        if self._scheduler.running:
            self._every(seconds, run, job_id)

    def _every(self, seconds: float, run: Callable[[], None], job_id: str) -> None:
        # A second instance may start while one is still running, and returns at once: no
        # "skipped: maximum number of running instances reached" warning every few seconds
        # while a long catch-up runs.
        self._scheduler.add_job(
            run, "interval", seconds=seconds, id=job_id, coalesce=True, max_instances=2
        )

    def shutdown(self) -> None:
        """Stop; a job already running finishes first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake_at(self, due: int | None) -> None:
        """Make sure the job runs at `due` (UTC ms) unless it is armed earlier already."""
        if due is None or due > LAST_INSTANT or not self._scheduler.running:
            return  # past year 9999 (a far-off date property): no datetime holds it
        with self._lock:
            if self._armed is not None and self._armed <= due:
                return
            self._armed = due
        self._arm(datetime.fromtimestamp(due / 1000, UTC))

    def _arm(self, run_date: datetime) -> None:
        self._scheduler.add_job(
            self._run,
            "date",
            run_date=run_date,
            id=JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def _run(self) -> None:
        with self._lock:
            self._armed = None
        if not self._running.acquire(blocking=False):
            # The catch-up under way processes what is due by its start, and arms the job
            # for the next deadline after (this one's too, if it falls later) when it ends.
            return
        began = time.monotonic()
        try:
            due = self._catch_up()
        except Exception:
            # Soon, not at the next poll: a write answered "stored, not applied yet" waits for
            # this (another process held the database); backing off for a lasting failure.
            retry = self._retry_seconds
            self._retry_seconds = min(retry * 2, self._poll_seconds)
            log.exception("processing deadlines failed; retrying in %s s", retry)
            # Armed like any deadline, so that a later one arriving meanwhile (an append's)
            # does not put it off until the next poll.
            at = datetime.now(UTC) + timedelta(seconds=retry)
            self.wake_at(int(at.timestamp() * 1000))
            return
        finally:
            self._running.release()
        self._retry_seconds = 1.0
        took = time.monotonic() - began
        if took >= LONG_CATCH_UP_SECONDS:  # a backlog (after downtime): say when it is done
            log.info("caught up with the log and the deadlines due in %.1f s", took)
        self.wake_at(due)
