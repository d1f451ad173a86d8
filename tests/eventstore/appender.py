"""A writer process for the contract's multi-process and crash tests.

Appends batches to the store at LOCATION and prints one JSON line per acknowledged batch,
only after `append` has returned, so every printed receipt is a promise the store made:

    {"batch": 7, "receipts": [[event_id, position, recorded_at, duplicate], ...]}

Every event carries `{"writer", "batch", "size"}` in its data, so a reader can tell
whether a batch was stored whole.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventstore.interface import NewEvent


def wall_clock() -> int:
    """Milliseconds since the epoch: the child processes share no fake clock."""
    return time.time_ns() // 1_000_000


def load(spec: str) -> Callable[..., Any]:
    """`module:callable` -> the callable."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def batch_of(name: str, index: int, rng: random.Random, max_size: int, shared_every: int):
    """One batch: the writer's own events on shared and private streams, and now and then
    an event_id that every writer sends (so writers race to store the same event)."""
    size = rng.randint(1, max_size)
    streams = [f"contact:shared-{k}" for k in range(3)] + [f"contact:{name}"]
    events = []
    for j in range(size):
        event_id = f"{name}-{index}-{j}"
        if shared_every and j == 0 and index % shared_every == 0:
            # The same event from every writer (an id names one event: the same content).
            events.append(NewEvent(f"shared-{index}", "contact:shared-0", "page_viewed"))
            continue
        events.append(
            NewEvent(
                event_id=event_id,
                stream=rng.choice(streams),
                type=rng.choice(["page_viewed", "email_opened", "purchased"]),
                data={
                    "writer": name,
                    "batch": index,
                    "size": size,
                    "pad": "x" * rng.randint(0, 200),
                },
            )
        )
    return events


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, append, print receipts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("factory", help="module:callable taking (location, clock)")
    parser.add_argument("location")
    parser.add_argument("--name", required=True)
    parser.add_argument("--batches", type=int, default=0, help="0: until killed")
    parser.add_argument("--max-size", type=int, default=5)
    parser.add_argument("--shared-every", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause-ms", type=float, default=0.0, help="at most, between batches")
    parser.add_argument("--barrier", help="touch DIR/ready-NAME, then wait for DIR/go")
    args = parser.parse_args(argv)

    store = load(args.factory)(args.location, wall_clock)
    if args.barrier:
        # Interpreter start-up takes longer than the appends: start every writer together.
        (Path(args.barrier) / f"ready-{args.name}").touch()
        while not (Path(args.barrier) / "go").exists():
            time.sleep(0.001)
    rng = random.Random(f"{args.seed}-{args.name}")
    index = 0
    while args.batches == 0 or index < args.batches:
        batch = batch_of(args.name, index, rng, args.max_size, args.shared_every)
        receipts = store.append(batch)
        line = {
            "batch": index,
            "receipts": [[r.event_id, r.position, r.recorded_at, r.duplicate] for r in receipts],
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        index += 1
        if args.pause_ms:
            # A writer that always holds the lock starves the others (SQLite's busy handler
            # sleeps, it does not queue); real producers pause between requests.
            time.sleep(rng.uniform(0, args.pause_ms) / 1000)
    store.close()


if __name__ == "__main__":
    main()
