"""While the scheduler catches up a backlog (after downtime), requests do not wait for it."""

from __future__ import annotations

import threading

import pytest

from api.schemas import format_instant
from tests.clock import TurnClock

START = 1_795_000_000_000
DAY = 86_400_000


@pytest.fixture
def clock():
    return TurnClock(START)


def test_requests_answer_at_once_while_the_scheduler_catches_up_a_backlog(app, api, clock):
    service = app.extensions["segments"].service
    api("marketer").post(
        "/v1/segments", json={"name": "Openers", "rule": "opened email within 1 day"}
    )
    for i in range(120):  # exits due one second apart, a day later
        clock.now = START + i * 1000
        api("producer").post("/v1/events", json={"contact_id": f"c{i}", "type": "email_opened"})
    service.projector.deadline_slice = 20
    service.backlog_after_ms = 0
    clock.now = START + 2 * DAY  # down meanwhile

    def scheduler() -> None:
        clock.thread = threading.get_ident()
        service.catch_up_in_turns()

    thread = threading.Thread(target=scheduler)
    thread.start()
    try:
        assert clock.paused.wait(5)
        health = api("auditor").get("/healthz").json
        assert health["catching_up_since"] == format_instant(START + 2 * DAY)
        stored = api("producer").post(
            "/v1/events", json={"contact_id": "new", "type": "email_opened"}
        )
        assert stored.status_code == 202
        busy = api("auditor").get("/v1/segments/openers/members")
        assert (busy.status_code, busy.headers["Retry-After"]) == (503, "1")
        assert "backlog" in busy.json["detail"]
        assert api("auditor").get("/v1/events?limit=1").status_code == 200
    finally:
        clock.go.set()
        thread.join(10)
    assert api("auditor").get("/healthz").json["catching_up_since"] is None
    members = api("auditor").get("/v1/segments/openers/members").json["members"]
    assert [m["contact_id"] for m in members] == ["new"]
