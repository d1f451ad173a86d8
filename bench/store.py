"""Event store benchmark: append and read-back rates, against a plain-sqlite3 ceiling.

    python bench/store.py [--events 1000000] [--power-events 200000] [--profile]

Appends realistic events (bench/generate.py) in batches into a fresh SQLiteEventStore file
(durability "process"), reads them all back, then inserts the very same rows (positions,
versions and JSON computed up front) with plain `executemany` into a file with the same
table and indexes, WAL and synchronous setting: the ceiling. The same again with the
store's triggers shows what the append-only guards cost, and a shorter run with durability
"power" what surviving power loss costs. Events are generated before any timing starts.
Prints a table; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import platform
import pstats
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from eventstore.connections import SYNCHRONOUS
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore

try:
    from bench.generate import generate_events, to_new_event
except ModuleNotFoundError:  # run as `python bench/store.py`: bench/ itself is on sys.path
    from generate import generate_events, to_new_event  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]


def wall_clock() -> int:
    return time.time_ns() // 1_000_000


def batched(events: list[NewEvent], size: int) -> list[list[NewEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def size_of(path: Path) -> int:
    """The database with its WAL, if one is left."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def append_all(
    path: Path, batches: Sequence[Sequence[NewEvent]], durability: str, profile: bool = False
) -> list[float]:
    """Append every batch; the seconds each `append` took (the store's own work only)."""
    store = SQLiteEventStore(path, wall_clock, durability=durability)
    profiler = cProfile.Profile() if profile else None
    seconds = []
    try:
        for batch in batches:
            if profiler:
                profiler.enable()
            t0 = time.perf_counter()
            store.append(batch)
            seconds.append(time.perf_counter() - t0)
            if profiler:
                profiler.disable()
    finally:
        store.close()
    if profiler:
        print(f"\nprofile of append (durability={durability}):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return seconds


def read_all(path: Path) -> tuple[int, float]:
    """Read the whole log back with `read()`: (events, seconds)."""
    store = SQLiteEventStore(path, wall_clock)
    try:
        t0 = time.perf_counter()
        count = sum(1 for _ in store.read())
        return count, time.perf_counter() - t0
    finally:
        store.close()


def schema_of(path: Path, triggers: bool) -> list[str]:
    """The events table and its indexes exactly as the store made them, and its triggers
    if asked (the ceiling proper is a bare table: the triggers are the store's own cost)."""
    kinds = {"table": 0, "index": 1, "trigger": 2} if triggers else {"table": 0, "index": 1}
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    return [sql for kind, sql in sorted(rows, key=lambda r: kinds.get(r[0], 9)) if kind in kinds]


def ceiling_rows(batches: Sequence[Sequence[NewEvent]]) -> list[list[tuple]]:
    """The rows the store would write: positions, versions, encoded data, computed up front."""
    versions: dict[str, int] = {}
    position = 0
    recorded_at = wall_clock()
    out = []
    for batch in batches:
        rows = []
        for e in batch:
            position += 1
            version = versions[e.stream] = versions.get(e.stream, 0) + 1
            data = json.dumps(e.data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            occurred_at = recorded_at if e.occurred_at is None else e.occurred_at
            rows.append(
                (position, e.event_id, e.stream, version, e.type, occurred_at, recorded_at, data)
            )
        out.append(rows)
    return out


def insert_all(path: Path, schema: list[str], batches: list[list[tuple]]) -> list[float]:
    """Plain sqlite3: one BEGIN IMMEDIATE / executemany / COMMIT per batch, as the store does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS['process']}")
    for sql in schema:
        conn.execute(sql)
    insert = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    seconds = []
    try:
        for rows in batches:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
            seconds.append(time.perf_counter() - t0)
    finally:
        conn.close()
    return seconds


def rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f}" if seconds > 0 else "-"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, help="default: events / 20")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--power-events", type=int, default=200_000, help="fewer if slow")
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--profile", action="store_true", help="cProfile the store's appends")
    args = parser.parse_args(argv)
    contacts = args.contacts or max(1, args.events // 20)
    power_events = min(args.power_events, args.events)

    t0 = time.perf_counter()
    events = [to_new_event(e) for e in generate_events(args.seed, contacts, args.events)]
    generation = time.perf_counter() - t0
    batches = batched(events, args.batch)
    power_batches = batched(events[:power_events], args.batch)
    print(
        f"{args.events:,} events, {contacts:,} contacts, batches of {args.batch:,}, seed"
        f" {args.seed}; generated in {generation:.1f} s (not timed below)."
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {os.cpu_count()} CPUs",
        flush=True,
    )

    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        names = ("store.db", "ceiling.db", "triggered.db", "power.db")
        store_path, ceiling_path, triggered_path, power_path = (Path(tmp) / n for n in names)

        store = append_all(store_path, batches, "process", profile=args.profile)
        read_count, read_seconds = read_all(store_path)
        if read_count != args.events:
            raise RuntimeError(f"read back {read_count} events of {args.events}")
        store_size = size_of(store_path)

        rows = ceiling_rows(batches)
        ceiling = insert_all(ceiling_path, schema_of(store_path, triggers=False), rows)
        ceiling_size = size_of(ceiling_path)
        triggered = insert_all(triggered_path, schema_of(store_path, triggers=True), rows)
        del rows

        power = append_all(power_path, power_batches, "power")

    n, m = args.events, power_events
    store_s, ceiling_s, triggered_s, power_s = (sum(x) for x in (store, ceiling, triggered, power))
    # "power" against "process" over the same first events, so that the log is as large.
    prefix_s = sum(itertools.islice(store, len(power_batches)))

    def line(label: str, events: int, seconds: float, ratio: str = "") -> tuple[str, ...]:
        return (label, f"{events:,}", f"{seconds:.2f}", rate(events, seconds), ratio)

    def size(label: str, nbytes: int) -> tuple[str, ...]:
        return (label, "", "", f"{nbytes / 1e6:,.1f} MB", f"{nbytes / n:.0f} B/event")

    print(
        table(
            [
                ("measure", "events", "seconds", "events/s", "ratio"),
                line("store append (process)", n, store_s),
                line("ceiling: sqlite3 executemany", n, ceiling_s),
                ("store / ceiling (target >= 0.5)", "", "", "", f"{ceiling_s / store_s:.2f}"),
                line(
                    "ceiling + the store's triggers (executemany)",
                    n,
                    triggered_s,
                    f"{ceiling_s / triggered_s:.2f} of ceiling",
                ),
                line("read-back with read()", read_count, read_seconds),
                line("store append (power)", m, power_s, f"{prefix_s / power_s:.2f} of process"),
                line("store append (process), same events", m, prefix_s),
                size("file size: store", store_size),
                size("file size: ceiling", ceiling_size),
            ]
        )
    )


if __name__ == "__main__":
    main()
