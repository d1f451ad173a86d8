"""Replay benchmark: rebuilding the membership projection from the log, by the projector and
by the timeline (set-wise) replay.

    python bench/replay.py [--sizes 100000,2000000,5000000] [--projector-up-to 100000]

Logs hold the 20 MIXED_SEGMENTS, defined first, then generated events recorded in batches of
1,000 (recorded_at: the batch's latest occurred_at); they are built once under var/bench/.
Each size runs in a fresh process, so that its peak memory is its own. Prints a table; the
baseline, measured in the same run, is a plain SQLite scan of the same rows. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import START, WORK, Clock, peak_rss_mb
from bench.generate import MIXED_SEGMENTS, generate_events, to_new_event
from engine.segments import (
    MEMBERS_ADDED,
    MEMBERS_REMOVED,
    SEGMENT_ARCHIVED,
    SEGMENT_DEFINED,
    SEGMENT_RULE_CHANGED,
    slugify,
)
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore
from grammar import ast as a
from grammar import format_rule, parse, to_json


def definition(name: str, rule: str | None, changed: bool = False) -> NewEvent:
    """A segment definition as the service writes it (a static list without a rule)."""
    segment_id = slugify(name)
    if rule is None:
        data: dict = {"name": name, "kind": "static", "description": None}
    else:
        ast = parse(rule)
        refs = {ref: slugify(ref) for ref in a.segment_refs(ast)}
        data = {"rule": format_rule(ast), "ast": to_json(ast), "references": refs}
        if not changed:
            data = {"name": name, "kind": "dynamic", "description": None, **data}
    kind = SEGMENT_RULE_CHANGED if changed else SEGMENT_DEFINED
    return NewEvent(f"{kind}-{segment_id}-{rule}", f"segment:{segment_id}", kind, data)


def build_log(
    path: Path,
    events: int,
    contacts: int,
    *,
    seed: int = 11,
    late: float = 0.0,
    extras: bool = False,
) -> SQLiteEventStore:
    """Write the log; `extras` adds a rule change, a static list with edits and an archive."""
    clock = Clock(START - 60_000)
    log = SQLiteEventStore(path, clock)
    log.append([definition(name, rule) for name, rule in MIXED_SEGMENTS])
    batch: list[NewEvent] = []
    for i, event in enumerate(generate_events(seed, contacts, events, late_fraction=late), 1):
        batch.append(to_new_event(event))
        if len(batch) < 1000 and i < events:
            continue
        clock.now = max(clock.now, max(e.occurred_at for e in batch))
        log.append(batch)
        batch = []
        if extras and i == (events // 2000) * 1000:
            vip = "segment:vip"
            log.append(
                [
                    definition("Recent buyers", "purchased at least 2 times within 30 days", True),
                    definition("VIP", None),
                    NewEvent("vip-1", vip, MEMBERS_ADDED, {"contacts": ["c-1", "c-2", "c-x"]}),
                    definition("VIP engaged", 'in segment "VIP" and in segment "Engaged"'),
                ]
            )
        if extras and i == (3 * events // 4000) * 1000:
            log.append(
                [
                    NewEvent("vip-2", "segment:vip", MEMBERS_REMOVED, {"contacts": ["c-2"]}),
                    NewEvent("archive", "segment:missing-city", SEGMENT_ARCHIVED, {}),
                ]
            )
    return log


def bench_log(events: int, contacts: int) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"timeline-{events}-{contacts}.db"
    if not path.exists():
        print(f"building {path.name} (once)...", file=sys.stderr, flush=True)
        tmp = Path(str(path) + ".tmp")
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        build_log(tmp, events, contacts).close()
        os.replace(tmp, path)
    return path


def measure(events: int, contacts: int, method: str) -> dict:
    """One replay in this process: its time, the log's size, the scan baseline, peak memory."""
    from engine.replay import replay
    from eventstore.sqlite_projection import SQLiteProjectionStore

    path = bench_log(events, contacts)
    log = SQLiteEventStore(path, Clock(0))
    total = log.last_position()
    now = log.connection().execute("SELECT max(recorded_at) FROM events").fetchone()[0]
    scratch_path = WORK / f"replay-{method}-{events}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(scratch_path) + suffix).unlink(missing_ok=True)
    scratch = SQLiteProjectionStore(scratch_path)
    # Baseline: reading the same rows with plain sqlite3 (no decoding of data).
    began = time.perf_counter()
    for _ in sqlite3.connect(path).execute(
        "SELECT position, stream, type, occurred_at, recorded_at, data FROM events"
    ):
        pass
    base = time.perf_counter() - began
    before = peak_rss_mb()
    started = time.perf_counter()
    replay(log, scratch, now, method=method)
    took = time.perf_counter() - started
    count = sqlite3.connect(scratch_path).execute("SELECT count(*) FROM transitions").fetchone()[0]
    return {
        "events": total,
        "seconds": took,
        "rate": total / took,
        "base_rate": total / base,
        "rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "transitions": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,2000000,5000000")
    parser.add_argument("--projector-up-to", type=int, default=100_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # events,contacts,method: child run
    args = parser.parse_args()
    if args.one:
        events, contacts, method = args.one.split(",")
        print(json.dumps(measure(int(events), int(contacts), method)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        contacts = size // 10
        for method in ("timeline", "projector"):
            if method == "projector" and size > args.projector_up_to:
                continue
            bench_log(size, contacts)
            out = subprocess.run(
                [sys.executable, __file__, "--one", f"{size},{contacts},{method}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            rows.append((f"{method} replay, {r['events']:,} events, {contacts:,} contacts", r))
    width = max(len(name) for name, _ in rows)
    print(
        f"\n{'benchmark':<{width}}  {'seconds':>8}  {'events/s':>10}  {'target':>10}"
        f"  {'scan rows/s':>12}  {'x scan':>7}  {'peak RSS':>9}  {'transitions':>12}"
    )
    for name, r in rows:
        print(
            f"{name:<{width}}  {r['seconds']:8.1f}  {r['rate']:10,.0f}  {200_000:10,}"
            f"  {r['base_rate']:12,.0f}  {r['base_rate'] / r['rate']:7.1f}"
            f"  {r['rss_mb']:7,.0f}MB  {r['transitions']:12,}"
        )


if __name__ == "__main__":
    main()
