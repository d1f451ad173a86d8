"""The service copies SQLite's write-ahead log back from the scheduler's thread, so that no
request commits into a checkpoint; without the scheduler, SQLite does it on commits."""

from __future__ import annotations

import time

from api import create_app, start_background
from engine.service import ContactEvent


def close(app) -> None:
    found = app.extensions["segments"]
    if found.scheduler is not None:
        found.scheduler.shutdown()
    found.service.log.close()
    found.service.projection.close()
    found.keys.close()


def test_the_scheduler_copies_the_wal_back(tmp_path):
    path = tmp_path / "segments.db"
    app = create_app({"SEGMENTS_DB": str(path), "WAL_CHECKPOINT_SECONDS": 0.05})
    try:
        service = app.extensions["segments"].service
        log = service.log.connection()
        assert log.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        empty = path.stat().st_size
        big = {"note": "x" * 2_000}
        for batch in range(5):  # some 3 MB, in the log only until a checkpoint runs
            service.ingest([ContactEvent(f"c{batch}-{i}", "page_viewed", big) for i in range(300)])
        assert path.stat().st_size == empty

        start_background(app)
        waited = time.monotonic() + 10
        while path.stat().st_size < 3_000_000 and time.monotonic() < waited:
            time.sleep(0.05)
        assert path.stat().st_size >= 3_000_000
    finally:
        close(app)


def test_without_the_scheduler_sqlite_checkpoints_on_commits(tmp_path):
    app = create_app(
        {
            "SEGMENTS_DB": str(tmp_path / "segments.db"),
            "WAL_CHECKPOINT_SECONDS": 0.05,
            "SCHEDULER": False,
        }
    )
    path = tmp_path / "segments.db"
    try:
        service = app.extensions["segments"].service
        log = service.log.connection()
        assert log.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
        empty = path.stat().st_size
        big = {"note": "x" * 2_000}
        for batch in range(5):  # some 3 MB: past 1,000 pages of log, a commit copies it back
            service.ingest([ContactEvent(f"c{batch}-{i}", "page_viewed", big) for i in range(300)])
        assert path.stat().st_size > empty + 1_000_000
    finally:
        close(app)
