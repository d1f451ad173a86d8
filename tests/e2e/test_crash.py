"""The service killed mid-ingest, again and again: nothing it acknowledged is lost, no batch
is stored in part, a producer's retry of the unanswered batch is stored once, and when the
service runs again its projection has caught up and equals a replay of the log."""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import time

import pytest

from tests.e2e.server import Server, flask_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEGMENTS = [
    ("Recent visitors", "visited page within 2 seconds"),
    ("Frequent", "visited page at least 3 times"),
    ("Germans", 'country is "DE"'),
]
BATCH = 20


def batch(n: int) -> list[dict]:
    """Batch n: page views and country changes of a few dozen contacts."""
    return [
        {
            "event_id": f"b{n}-{i}",
            "contact_id": f"c{(n * BATCH + i) % 37}",
            "type": "contact_updated" if i % 5 == 0 else "page_viewed",
            "properties": {"country": "DE" if n % 2 else "FR"} if i % 5 == 0 else {"url": "/"},
        }
        for i in range(BATCH)
    ]


class Producer:
    """Posts numbered batches on one connection until the service stops answering; the batch
    left unanswered is posted first next time, as a producer retrying would."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.next = 0
        self.receipts: dict[str, tuple[int, bool]] = {}  # event_id -> (position, duplicate)

    def run(self, server: Server) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        try:
            while True:
                body = json.dumps({"events": batch(self.next)})
                conn.request("POST", "/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                answer = json.loads(response.read())
                assert response.status in (200, 201), answer
                for r in answer["events"]:
                    self.receipts[r["event_id"]] = (r["position"], r["duplicate"])
                self.next += 1
        except (OSError, http.client.HTTPException):
            return  # killed: the batch in flight was not acknowledged
        finally:
            conn.close()


def test_a_killed_service_loses_nothing_it_acknowledged(tmp_path):
    db = tmp_path / "segments.db"
    admin = flask_cli(db, "keys", "create", "--role", "admin").strip().splitlines()[-1]
    producer = Producer(admin)
    rng = random.Random(7)
    retried: list[int] = []  # per round, the batch it began with
    for round_ in range(3):
        server = Server(db).start()
        if round_ == 0:
            for name, rule in SEGMENTS:
                created = server.call("POST", "/v1/segments", {"name": name, "rule": rule}, admin)
                assert created[0] == 201, created
        killer = threading.Timer(rng.uniform(0.5, 1.5), server.process.kill)
        killer.start()
        retried.append(producer.next)
        producer.run(server)
        killer.join()
        server.process.communicate()
        assert server.process.returncode < 0  # it was killed, not stopped

    server = Server(db).start()
    try:
        deadline = time.monotonic() + 30
        while True:
            health = server.call("GET", "/healthz")[1]
            if health["projected_position"] == health["log_position"]:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        stored = {}  # the contacts' events: event_id -> position
        positions = []
        after = 0
        while True:
            _, page, _ = server.call("GET", f"/v1/events?after={after}&limit=1000", key=admin)
            if not page["events"]:
                break
            positions += [e["position"] for e in page["events"]]
            stored.update(
                {
                    e["event_id"]: e["position"]
                    for e in page["events"]
                    if e["stream"].startswith("contact:")
                }
            )
            after = page["events"][-1]["position"]
    finally:
        server.stop()

    # Every round acknowledged batches of its own before it was killed.
    assert all(b > a for a, b in itertools.pairwise([*retried, producer.next]))
    # Every acknowledged event is where its receipt said; the log has no gap.
    assert {e: p for e, (p, _) in producer.receipts.items()}.items() <= stored.items()
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) == len(stored) + len(SEGMENTS)
    # Each batch is stored whole or not at all; every acknowledged one whole.
    sizes: dict[str, int] = {}
    for event_id in stored:
        sizes[event_id.split("-")[0]] = sizes.get(event_id.split("-")[0], 0) + 1
    assert set(sizes.values()) == {BATCH}
    assert {f"b{n}" for n in range(producer.next)} <= sizes.keys()
    # A retried batch is acknowledged whole: as new, or as a repeat if the killed service had
    # stored it before it could answer.
    for n in retried[1:]:
        duplicates = {producer.receipts[f"b{n}-{i}"][1] for i in range(BATCH)}
        assert len(duplicates) == 1
    report = flask_cli(db, "replay", "--verify")
    assert "equals a replay" in report, report
