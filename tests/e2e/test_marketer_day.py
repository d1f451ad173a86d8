"""A marketer's day against the real service over HTTP: keys, events, segments, a contact
entering and leaving on time with no new event, and an auditor reading why."""

from __future__ import annotations

import time

import pytest

from api.schemas import format_instant, parse_instant
from tests.e2e.server import Server, flask_cli

pytestmark = pytest.mark.e2e


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_a_marketers_day(tmp_path):
    db = tmp_path / "segments.db"
    admin = (
        flask_cli(db, "keys", "create", "--role", "admin", "--name", "ops").strip().splitlines()[-1]
    )
    server = Server(db).start()
    try:
        keys = {}
        for role in ("marketer", "producer", "auditor"):
            status, body, _ = server.call("POST", "/v1/keys", {"role": role}, admin)
            assert status == 201
            keys[role] = body["key"]

        status, body, _ = server.call(
            "POST",
            "/v1/segments",
            {"name": "Trial users", "rule": 'performed "trial_started" within 3 seconds'},
            keys["marketer"],
        )
        assert status == 201, body

        status, body, _ = server.call(
            "POST", "/v1/events", {"contact_id": "c-1", "type": "trial_started"}, keys["producer"]
        )
        assert status == 201
        recorded = parse_instant(body["recorded_at"])

        # Membership is current when the ingest returns.
        status, body, _ = server.call("GET", "/v1/contacts/c-1/segments", key=keys["auditor"])
        assert [s["id"] for s in body["segments"]] == ["trial-users"]

        # No new event: the contact leaves when the window ends.
        def left():
            _, seen, _ = server.call("GET", "/v1/contacts/c-1/segments", key=keys["auditor"])
            return seen["segments"] == []

        assert wait_for(left)
        assert time.time() * 1000 >= recorded + 3000

        status, body, _ = server.call(
            "GET", "/v1/segments/trial-users/transitions", key=keys["auditor"]
        )
        kinds = [(t["kind"], t["at"], t["cause"]["kind"]) for t in body["transitions"]]
        assert kinds == [
            ("entered", format_instant(recorded), "event"),
            ("exited", format_instant(recorded + 3000), "time"),
        ]

        inside = format_instant(recorded + 1500)
        status, body, _ = server.call(
            "GET", f"/v1/segments/trial-users/explain/c-1?at={inside}", key=keys["auditor"]
        )
        assert status == 200
        assert body["member"] is True
        event_node = body["explanation"]["children"][0]
        assert event_node["details"]["count"] == 1
        assert event_node["next_change"] == format_instant(recorded + 3000)

        status, _, _ = server.call(
            "POST", "/v1/segments", {"name": "x", "rule": "y"}, keys["auditor"]
        )
        assert status == 403
    finally:
        server.stop()

    report = flask_cli(db, "replay", "--verify")
    assert "equals a replay" in report


def test_deadlines_due_while_the_service_was_down_keep_their_boundary_instants(tmp_path):
    db = tmp_path / "segments.db"
    admin = flask_cli(db, "keys", "create", "--role", "admin").strip().splitlines()[-1]
    server = Server(db).start()
    try:
        server.call(
            "POST",
            "/v1/segments",
            {"name": "Recent", "rule": "visited page within 2 seconds"},
            admin,
        )
        _, body, _ = server.call(
            "POST", "/v1/events", {"contact_id": "c-9", "type": "page_viewed"}, admin
        )
        recorded = parse_instant(body["recorded_at"])
    finally:
        server.stop()
    time.sleep(3)
    server = Server(db).start()
    try:

        def exited():
            _, seen, _ = server.call("GET", "/v1/segments/recent/transitions", key=admin)
            return [t for t in seen["transitions"] if t["kind"] == "exited"]

        found = wait_for(exited)
        assert [t["at"] for t in found] == [format_instant(recorded + 2000)]
    finally:
        server.stop()
