"""HTTP benchmark: ingest in batches of 1,000 with 20 segments active, and single-event latency.

    python bench/api.py [--events N] [--singles N]

Starts the real service (python -m api.serve) on a fresh SQLite file and talks to it over
HTTP with one keep-alive connection. The baselines are measured in the same run: for ingest,
the same events appended in batches of 1,000 straight to a fresh event store in this process
(no HTTP, no validation, no projection: what storing them costs alone); for latency, GET
/healthz against the same process (what any request costs here before our work). Two more
rows bound the ingest: the same batches read and answered alone (JSON in, the marshmallow
schemas, the receipts out, in this process), and that with the appending: what the service
could ingest if applying the events to membership cost nothing. Never asserts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.schemas import EventBatchIn, ReceiptsOut  # noqa: E402
from bench.common import DAY, START, Clock  # noqa: E402
from bench.generate import MIXED_SEGMENTS, generate_events, iso, to_new_event  # noqa: E402
from bench.table import print_table  # noqa: E402
from engine.service import ContactEvent  # noqa: E402
from eventstore.interface import Receipt  # noqa: E402
from eventstore.sqlite import SQLiteEventStore  # noqa: E402
from eventstore.sqlite_keys import SQLiteKeyStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=2_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "segments.db"
        keys = SQLiteKeyStore(db)
        _, key = keys.create("admin", "bench", int(time.time() * 1000))
        keys.close()
        port = free_port()
        env = {**os.environ, "SEGMENTS_DB": str(db), "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            [sys.executable, "-m", "api.serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            rates = append_rate(Path(scratch) / "append.db", args), validation_rate(args)
            rows = run(port, key, args, *rates)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print_table(rows)


def append_rate(path: Path, args: argparse.Namespace) -> float:
    """Events per second appending the benchmark's events alone, in batches of 1,000."""
    events = [to_new_event(e) for e in generate_events(5, args.contacts, args.events, start=START)]
    log = SQLiteEventStore(path, Clock(START))
    started = time.perf_counter()
    for i in range(0, len(events), 1000):
        log.append(events[i : i + 1000])
    took = time.perf_counter() - started
    log.close()
    return len(events) / took


def posted_events(args: argparse.Namespace, start: int) -> list[dict]:
    """The benchmark's events as a producer posts them."""
    return [
        {
            "event_id": e["event_id"],
            "contact_id": e["contact_id"],
            "type": e["type"],
            "occurred_at": iso(e["occurred_at"]),
            "properties": e["properties"],
        }
        for e in generate_events(5, args.contacts, args.events, start=start)
    ]


def validation_rate(args: argparse.Namespace) -> float:
    """Events per second reading the benchmark's batches of 1,000 as the service does (JSON,
    the marshmallow schemas) and answering them (receipts through their schema, JSON), alone."""
    events = posted_events(args, START)
    bodies = [json.dumps({"events": events[i : i + 1000]}) for i in range(0, len(events), 1000)]
    receipts = [Receipt(e["event_id"], i + 1, START, False) for i, e in enumerate(events[:1000])]
    started = time.perf_counter()
    for body in bodies:
        loaded = EventBatchIn().load(json.loads(body))["events"]
        received = [ContactEvent(**e) for e in loaded]
        json.dumps(ReceiptsOut().dump({"events": receipts[: len(received)]}))
    return len(events) / (time.perf_counter() - started)


def run(
    port: int, key: str, args: argparse.Namespace, store_rate: float, read_rate: float
) -> list[tuple]:
    deadline = time.monotonic() + 30
    while True:
        try:
            client = Client(port, key)
            client.call("GET", "/healthz")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

    for name, rule in MIXED_SEGMENTS:
        status, body = client.call("POST", "/v1/segments", {"name": name, "rule": rule})
        assert status == 201, body

    # The generator's stream spans the 180 days up to now, as a producer's recent history
    # would: the windows of the rules hold its later events, so deadlines are set and the
    # forecasts worked out. (A stream from long ago leaves every window empty, and measured
    # a quarter faster.)
    start = int(time.time() * 1000) - 180 * DAY
    events = posted_events(args, start)
    batches = [events[i : i + 1000] for i in range(0, len(events), 1000)]
    started = time.perf_counter()
    for batch in batches:
        status, body = client.call("POST", "/v1/events", {"events": batch})
        assert status == 201, body[:300]
    took = time.perf_counter() - started
    rate = len(events) / took

    health = []
    for _ in range(args.singles):
        began = time.perf_counter()
        client.call("GET", "/healthz")
        health.append((time.perf_counter() - began) * 1000)

    latencies = []
    contacts = [e["contact_id"] for e in events[: args.singles]]
    for contact in contacts:
        began = time.perf_counter()
        status, _ = client.call(
            "POST",
            "/v1/events",
            {"contact_id": contact, "type": "page_viewed", "properties": {"url": "/pricing"}},
        )
        latencies.append((time.perf_counter() - began) * 1000)
        assert status == 201

    health_p50, health_p99 = statistics.median(health), percentile(health, 0.99)
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    base_rate = 1000 / health_p50  # requests per second on one connection
    return [
        (
            f"ingest {len(events):,} events in batches of 1,000, 20 segments",
            f"{rate:,.0f} ev/s",
            ">= 20,000 ev/s",
            f"{store_rate:,.0f} ev/s",
            store_rate / rate,
        ),
        (
            "  baseline: reading and answering the batches alone (JSON, marshmallow)",
            f"{read_rate:,.0f} ev/s",
            "",
            "",
            None,
        ),
        (
            "  both alone: the bound with no projection and no HTTP",
            f"{1 / (1 / store_rate + 1 / read_rate):,.0f} ev/s",
            "",
            "",
            None,
        ),
        ("single event POST p50", f"{p50:.2f} ms", "", f"{health_p50:.2f} ms", p50 / health_p50),
        (
            "single event POST p99",
            f"{p99:.2f} ms",
            "< 10 ms",
            f"{health_p99:.2f} ms",
            p99 / health_p99,
        ),
        ("  baseline: GET /healthz requests per second", f"{base_rate:,.0f} /s", "", "", None),
    ]


if __name__ == "__main__":
    main()
