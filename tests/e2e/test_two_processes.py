"""Two service processes on one database, both taking events and both running the scheduler:
each acknowledges only what is stored, and the projection they keep between them equals a
replay of the log."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from tests.e2e.server import Server, flask_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEGMENTS = [
    ("Recent visitors", "visited page within 1 seconds"),
    ("Frequent", "visited page at least 3 times within 3 seconds"),
    ("Germans", 'country is "DE"'),
    ("German regulars", 'in segment "Frequent" and in segment "Germans"'),
]


def post_batches(server: Server, key: str, name: str, count: int, acked: dict) -> None:
    """Post `count` batches to one server, each touching contacts the other server's batches
    touch too; record the receipts."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for n in range(count):
        events = [
            {
                "event_id": f"{name}-{n}-{i}",
                "contact_id": f"c{(n + i) % 23}",
                "type": "contact_updated" if i % 4 == 0 else "page_viewed",
                "properties": {"country": "DE" if (n + i) % 3 else "FR"} if i % 4 == 0 else {},
            }
            for i in range(10)
        ]
        conn.request("POST", "/v1/events", body=json.dumps({"events": events}), headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        acked[name].append((response.status, answer))
        time.sleep(0.01)  # time passes between batches: windows close while others post
    conn.close()


def test_two_processes_keep_one_projection(tmp_path):
    db = tmp_path / "segments.db"
    admin = flask_cli(db, "keys", "create", "--role", "admin").strip().splitlines()[-1]
    first, second = Server(db).start(), Server(db).start()
    try:
        for i, (name, rule) in enumerate(SEGMENTS):
            server = (first, second)[i % 2]
            created = server.call("POST", "/v1/segments", {"name": name, "rule": rule}, admin)
            assert created[0] == 201, created
        acked: dict[str, list] = {"one": [], "two": []}
        producers = [
            threading.Thread(target=post_batches, args=(first, admin, "one", 60, acked)),
            threading.Thread(target=post_batches, args=(second, admin, "two", 60, acked)),
        ]
        for p in producers:
            p.start()
        for p in producers:
            p.join()
        assert [s for s, _ in acked["one"] + acked["two"]] == [201] * 120, acked
        time.sleep(3.5)  # every window closes; both schedulers may fire the exits

        # Both see the same members, and every event is stored where its receipt said.
        for segment in ("recent-visitors", "frequent", "germans", "german-regulars"):
            path = f"/v1/segments/{segment}/members?limit=1000"
            assert (
                first.call("GET", path, key=admin)[1]["members"]
                == (second.call("GET", path, key=admin)[1]["members"])
            )
        stored, after = {}, 0
        while page := first.call("GET", f"/v1/events?after={after}&limit=1000", key=admin)[1]:
            if not page["events"]:
                break
            stored.update({e["event_id"]: e["position"] for e in page["events"]})
            after = page["events"][-1]["position"]
        for _, answer in acked["one"] + acked["two"]:
            for receipt in answer["events"]:
                assert stored[receipt["event_id"]] == receipt["position"]
        assert len(stored) == len(SEGMENTS) + 120 * 10
        health = first.call("GET", "/healthz")[1]
        assert health["projected_position"] == health["log_position"]
        _, moves, _ = first.call("GET", "/v1/segments/recent-visitors/transitions", key=admin)
        assert {"entered", "exited"} <= {t["kind"] for t in moves["transitions"]}
    finally:
        first.stop()
        second.stop()
    report = flask_cli(db, "replay", "--verify")
    assert "equals a replay" in report, report
