"""The HTTP API: `create_app(config)` wires the log, the projection, the engine, the keys and
the scheduler, and registers the blueprints, the error handlers and the CLI."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g
from flask.cli import NoAppException

from api import cli, problems
from api.scheduler import DeadlineScheduler
from api.web import Services, refuse_undecodable_path
from engine.service import Service
from eventstore.connections import SYNCHRONOUS
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_keys import SQLiteKeyStore
from eventstore.sqlite_projection import SQLiteProjectionStore

DEFAULTS: dict[str, Any] = {
    "SEGMENTS_DB": "var/segments.db",
    "DURABILITY": "process",  # or "power": every commit also survives losing power
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "MAX_BATCH": 10_000,
    "MAX_FUTURE_MS": 24 * 3_600_000,
    # How long a write waits for another writer (another process, a replay) before the
    # request gets a 503 with Retry-After.
    "BUSY_TIMEOUT_MS": 30_000,
    "SCHEDULER": True,
    "POLL_SECONDS": 30.0,
    # Copy SQLite's write-ahead log back into the database from the scheduler's thread every
    # so many seconds, rather than on the commit that finds it long (which then waits for
    # it): api.serve sets it. None leaves it to SQLite, as CLI commands and tests do.
    "WAL_CHECKPOINT_SECONDS": None,
    # Work out, when nothing else is going on, what deadlines set without a forecast (a new
    # rule's) will bring: up to a thousand every so many seconds (None: never).
    "FORESEE_SECONDS": 0.25,
    "CLOCK": None,
}


class ConfigurationError(NoAppException):
    """The service cannot start as configured: a setting, or the database it names. (Flask's
    CLI prints the message of a NoAppException, not a traceback.)"""


def system_clock() -> int:
    """The wall clock in UTC milliseconds (the only place the service reads it)."""
    return time.time_ns() // 1_000_000


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application; `config` overrides the defaults and the environment (SEGMENTS_DB)."""
    app = Flask(__name__)
    # Not a redirect (an HTML 308) from /contacts/a%2F/segments to /contacts/a/segments, a
    # contact of another id: a path with an empty segment matches no route.
    app.url_map.merge_slashes = False
    app.config.from_mapping(DEFAULTS)
    if "SEGMENTS_DB" in os.environ:
        app.config["SEGMENTS_DB"] = os.environ["SEGMENTS_DB"]
    if "SEGMENTS_DURABILITY" in os.environ:
        app.config["DURABILITY"] = os.environ["SEGMENTS_DURABILITY"]
    app.config.update(config or {})

    clock = app.config["CLOCK"] or system_clock
    if not app.config["SEGMENTS_DB"]:
        raise ConfigurationError("SEGMENTS_DB is empty: name the SQLite file")
    path = Path(app.config["SEGMENTS_DB"])
    durability = app.config["DURABILITY"]
    if durability not in SYNCHRONOUS:  # the store's own list
        allowed = " or ".join(f'"{name}"' for name in SYNCHRONOUS)
        raise ConfigurationError(f"SEGMENTS_DURABILITY is {allowed}, not {durability!r}")
    checkpoint_seconds = app.config["WAL_CHECKPOINT_SECONDS"] if app.config["SCHEDULER"] else None
    auto = checkpoint_seconds is None
    wait = app.config["BUSY_TIMEOUT_MS"]
    app.extensions["segments_db_created"] = not path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = SQLiteEventStore(
            path, clock, durability=durability, busy_timeout_ms=wait, autocheckpoint=auto
        )
        projection = SQLiteProjectionStore(
            path, durability=durability, busy_timeout_ms=wait, autocheckpoint=auto
        )
        keys = SQLiteKeyStore(path, busy_timeout_ms=wait)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigurationError(f"cannot open the database {path} (SEGMENTS_DB): {exc}") from exc
    service = Service(
        log, projection, clock, max_future_ms=app.config["MAX_FUTURE_MS"], wait_ms=wait
    )
    scheduler = None
    if app.config["SCHEDULER"]:
        scheduler = DeadlineScheduler(service.catch_up_in_turns, app.config["POLL_SECONDS"])
        if checkpoint_seconds is not None:
            scheduler.every(checkpoint_seconds, log.checkpoint_wal, "wal-checkpoint")
        if app.config["FORESEE_SECONDS"] is not None:
            scheduler.every(app.config["FORESEE_SECONDS"], service.foresee, "foresee")
    app.extensions["segments"] = Services(service, keys, scheduler)

    # First of all: while a request is served, idle-time work stands aside.
    app.before_request(_began)
    app.teardown_request(_ended)
    app.before_request(refuse_undecodable_path)
    app.after_request(_hardened)

    from api import contacts, events, keys, meta, segments

    for module in (events, contacts, segments, keys, meta):
        app.register_blueprint(module.bp)
    problems.register(app)
    cli.register(app)
    if scheduler is not None:
        # Serving starts the scheduler (api.serve starts it at once); CLI commands never do.
        app.before_request(scheduler.start)
    return app


def _began() -> None:
    g.request_counted = True
    current_app.extensions["segments"].service.request_began()


def _ended(_: BaseException | None) -> None:
    if g.pop("request_counted", False):
        current_app.extensions["segments"].service.request_ended()


def _hardened(response: Response) -> Response:
    """Headers that keep a browser from reading an answer as other than it is, or from
    framing the service's pages (/docs) in another site's."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def start_background(app: Flask) -> None:
    """Start the time-driven scheduler now (it also processes what fell due meanwhile)."""
    scheduler = app.extensions["segments"].scheduler
    if scheduler is not None:
        scheduler.start()
