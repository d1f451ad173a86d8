"""The event store's recorder contract, written once and run against every backend.

A backend's test module subclasses `EventStoreContract` and fills in its hooks
(`new_location`, `create_store`, `raw_execute`, `child_factory`, `database_error`);
the contract itself is not collected, since its name does not start with "Test".
Raw SQL in here names only the table `events` and its columns (those of StoredEvent),
and the toy projection uses SQL without placeholders, so it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from eventstore.interface import (
    ConcurrencyError,
    EventIdReused,
    EventStore,
    InvalidEventError,
    NewEvent,
    Receipt,
    StoredEvent,
    Unchanged,
)

APPENDER = Path(__file__).with_name("appender.py")
ROOT = Path(__file__).resolve().parents[2]
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


class FakeClock:
    """A clock the test sets by hand, in ms since the epoch; the store asks it on every append."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def new(
    event_id: str,
    stream: str = "contact:1",
    kind: str = "page_viewed",
    data: Any = None,
    occurred_at: int | None = None,
) -> NewEvent:
    """A NewEvent with defaults; `data` may be anything, to build invalid events too."""
    return NewEvent(event_id, stream, kind, {} if data is None else data, occurred_at)


def ids(events: Iterator[StoredEvent] | list[StoredEvent]) -> list[str]:
    return [e.event_id for e in events]


class EventStoreContract(ABC):
    """What every EventStore backend must do; subclass it once per backend."""

    #: "module:callable" that a child process calls with (path_or_url, clock) to open the store.
    child_factory: str
    #: What the database raises when raw SQL breaks its rules (the immutability triggers).
    database_error: type[BaseException] | tuple[type[BaseException], ...]

    @abstractmethod
    def new_location(self, tmp_path: Path) -> str:
        """A path or URL naming a fresh, empty database."""

    @abstractmethod
    def create_store(
        self, path_or_url: str, clock: Callable[[], int], *, page_size: int = 1_000
    ) -> EventStore:
        """Open (creating if needed) the store at `path_or_url`."""

    @abstractmethod
    def raw_execute(self, store: EventStore, sql: str) -> list[tuple]:
        """Run one SQL statement on the store's database, outside the store's code, committed."""

    # ---- fixtures ----

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def location(self, tmp_path: Path) -> str:
        return self.new_location(tmp_path)

    @pytest.fixture
    def open_store(self, location: str, clock: FakeClock) -> Iterator[Callable[..., EventStore]]:
        """Opens the store at `location` (again); closes all of them after the test."""
        opened: list[EventStore] = []

        def open_(page_size: int = 1_000) -> EventStore:
            store = self.create_store(location, clock, page_size=page_size)
            opened.append(store)
            return store

        yield open_
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[..., EventStore]) -> EventStore:
        return open_store()

    # ---- an empty store, appending, reading ----

    def test_an_empty_store(self, store):
        assert store.last_position() == 0
        assert store.stream_version("contact:1") == 0
        assert list(store.read()) == []
        assert store.read_stream("contact:1") == []
        assert store.checkpoint("anything") == 0

    def test_an_empty_batch_stores_nothing(self, store):
        assert store.append([]) == []
        assert store.last_position() == 0

    def test_append_acknowledges_each_event_and_read_returns_it(self, store, clock):
        receipts = store.append(
            [
                new("a", "contact:1", "page_viewed", {"url": "/"}, occurred_at=START - 5),
                new("b", "contact:2", "email_opened", {"campaign": "welcome"}),
                new("c", "contact:1", "purchased", {"amount": 12.5}),
            ]
        )
        assert receipts == [
            Receipt("a", 1, START, duplicate=False),
            Receipt("b", 2, START, duplicate=False),
            Receipt("c", 3, START, duplicate=False),
        ]
        assert list(store.read()) == [
            StoredEvent(1, "a", "contact:1", 1, "page_viewed", START - 5, START, {"url": "/"}),
            StoredEvent(
                2, "b", "contact:2", 1, "email_opened", START, START, {"campaign": "welcome"}
            ),
            StoredEvent(3, "c", "contact:1", 2, "purchased", START, START, {"amount": 12.5}),
        ]
        assert store.last_position() == 3
        assert store.stream_version("contact:1") == 2
        assert store.stream_version("contact:2") == 1

    def test_a_large_batch_is_stored_whole_and_in_order(self, store):
        store.append([new("first")])
        batch = [new(f"e{i}", f"contact:{i % 7}", data={"i": i}) for i in range(1_300)]
        batch.insert(700, new("first"))
        receipts = store.append(batch)
        assert [r.position for r in receipts] == [*range(2, 702), 1, *range(702, 1302)]
        stored = list(store.read())
        assert [e.data.get("i") for e in stored[1:]] == list(range(1_300))
        for k in range(7):
            versions = [e.version for e in store.read_stream(f"contact:{k}")]
            assert versions == list(range(1, len(versions) + 1))

    def test_versions_count_per_stream_within_one_batch(self, store):
        streams = ["s:a", "s:b", "s:a", "s:a", "s:b"]
        store.append([new(f"e{i}", s) for i, s in enumerate(streams)])
        assert [(e.stream, e.version) for e in store.read()] == [
            ("s:a", 1),
            ("s:b", 1),
            ("s:a", 2),
            ("s:a", 3),
            ("s:b", 2),
        ]

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"name": "Zoë Ångström", "city": "Zürich", "emoji": "🎉", "cjk": "東京", "rtl": "שלום"},
            {"nested": {"list": [1, 2.5, None, True, "x"], "deep": {"a": {"b": {"c": []}}}}},
            {"big": 2**53, "negative": -7, "float": 0.1 + 0.2, "tiny": 5e-324, "empty": ""},
            {"quotes": "she said \"hi\" \\ 'bye'", "newline": "a\nb\tc", "key with space": 1},
        ],
        ids=["empty", "unicode", "nested", "numbers", "escapes"],
    )
    def test_data_round_trips(self, store, data):
        store.append([new("a", data=data)])
        (stored,) = store.read()
        assert stored.data == data
        assert json.dumps(stored.data, sort_keys=True) == json.dumps(data, sort_keys=True)
        assert store.read_stream("contact:1")[0].data == data

    def test_read_pages_through_the_log(self, open_store):
        store = open_store(page_size=3)
        store.append([new(f"e{i}") for i in range(1, 11)])
        assert [e.position for e in store.read()] == list(range(1, 11))
        assert [e.position for e in store.read(after=4)] == list(range(5, 11))
        assert [e.position for e in store.read(after=4, limit=5)] == [5, 6, 7, 8, 9]
        assert [e.position for e in store.read(after=0, limit=3)] == [1, 2, 3]
        assert [e.position for e in store.read(after=0, limit=6)] == list(range(1, 7))
        assert [e.position for e in store.read(after=8, limit=100)] == [9, 10]
        assert list(store.read(after=0, limit=0)) == []
        assert list(store.read(after=10)) == []
        assert list(store.read(after=99)) == []
        assert ids(store.read(after=9)) == ["e10"]

    def test_a_page_boundary_at_the_end_of_the_log(self, open_store):
        store = open_store(page_size=5)
        store.append([new(f"e{i}") for i in range(10)])
        assert len(list(store.read())) == 10
        store.append([new("late")])
        assert ids(store.read(after=5)) == [f"e{i}" for i in range(5, 10)] + ["late"]

    def test_a_reader_sees_what_is_appended_while_it_reads(self, open_store):
        store = open_store(page_size=2)
        store.append([new(f"e{i}") for i in range(4)])
        seen = []
        for event in store.read():
            seen.append(event.position)
            if event.position == 3:
                store.append([new("e4"), new("e5")])
        assert seen == [1, 2, 3, 4, 5, 6]

    def test_whether_events_in_a_range_of_positions_occurred_by_an_instant(self, store):
        store.append(
            [new("a", occurred_at=500), new("b", occurred_at=100), new("c", occurred_at=900)]
        )
        assert store.occurred_between(0, 3, 100)
        assert not store.occurred_between(0, 3, 99)
        assert store.occurred_between(1, 2, 100)  # b, at position 2
        assert not store.occurred_between(2, 3, 800)  # c alone, at 900
        assert not store.occurred_between(3, 3, 10_000)  # an empty range

    def test_read_stream_after_a_version(self, store):
        store.append([new(f"a{i}", "s:a") for i in range(4)] + [new("b0", "s:b")])
        store.append([new("a4", "s:a")])
        assert [e.version for e in store.read_stream("s:a")] == [1, 2, 3, 4, 5]
        assert ids(store.read_stream("s:a", after_version=3)) == ["a3", "a4"]
        assert [e.position for e in store.read_stream("s:a", after_version=3)] == [4, 6]
        assert store.read_stream("s:a", after_version=5) == []
        assert ids(store.read_stream("s:a", after_version=1, limit=2)) == ["a1", "a2"]
        assert ids(store.read_stream("s:a", limit=0)) == []
        assert ids(store.read_stream("s:b")) == ["b0"]
        assert store.read_stream("s:none") == []

    def test_a_reopened_store_has_everything(self, open_store):
        first = open_store()
        first.append([new("a", data={"k": "v"}), new("b", "s:other")])
        before = list(first.read())
        first.close()
        again = open_store()
        assert list(again.read()) == before
        assert again.last_position() == 2
        assert again.append([new("c")])[0].position == 3

    # ---- idempotency ----

    def test_a_repeated_event_id_is_acknowledged_with_its_position(self, store, clock):
        store.append([new("a", data={"v": 1, "w": [1, 2]}), new("b", occurred_at=START - 5)])
        clock.now += MINUTE
        # The same events again, their data written otherwise, one stamped anew by its sender.
        receipts = store.append(
            [new("b", occurred_at=START + MINUTE), new("a", data={"w": [1.0, 2], "v": 1})]
        )
        assert receipts == [
            Receipt("b", 2, START, duplicate=True),
            Receipt("a", 1, START, duplicate=True),
        ]
        assert ids(store.read()) == ["a", "b"]
        assert list(store.read())[1].occurred_at == START - 5

    @pytest.mark.parametrize(
        "other",
        [
            new("b", "contact:9"),
            new("b", kind="other"),
            new("b", data={"v": 2}),
            new("b", "segment:s", data={"v": 1}),
            new("b", data={"v": True}),
            new("b", data={"v": [1]}),
            new("b", data={"v": "1"}),
        ],
        ids=["stream", "type", "data", "stream-of-a-segment", "true-for-1", "list", "text"],
    )
    def test_an_event_id_reused_for_another_event_stores_nothing(self, store, other):
        store.append([new("a"), new("b", data={"v": 1})])
        with pytest.raises(EventIdReused) as info:
            store.append([new("c"), other])
        assert (info.value.index, info.value.event_id, info.value.position) == (1, "b", 2)
        assert ids(store.read()) == ["a", "b"]

    def test_every_event_id_reused_in_a_batch_is_named(self, store):
        store.append([new("a"), new("b")])
        with pytest.raises(EventIdReused) as info:
            store.append(
                [
                    new("c"),
                    new("a", kind="other"),
                    new("d"),
                    new("b", data={"v": 2}),
                    new("c", kind="x"),
                ]
            )
        assert (info.value.index, info.value.event_id, info.value.position) == (1, "a", 1)
        assert info.value.indexes == [1, 3, 4]
        assert ids(store.read()) == ["a", "b"]

    @pytest.mark.parametrize("first, second", [({"v": 1}, {"v": True}), ({"v": False}, {"v": 0})])
    def test_an_event_id_given_twice_in_a_batch_for_two_events_stores_nothing(
        self, store, first, second
    ):
        with pytest.raises(EventIdReused) as info:
            store.append([new("a", data=first), new("b"), new("a", kind="other")])
        assert (info.value.index, info.value.position) == (2, None)
        with pytest.raises(EventIdReused) as info:
            store.append([new("a", data=first), new("b"), new("a", data=second)])
        assert (info.value.index, info.value.position) == (2, None)
        assert store.last_position() == 0

    def test_a_repeat_within_one_batch_is_stored_once(self, store):
        receipts = store.append([new("a"), new("b"), new("a"), new("a")])
        assert [(r.event_id, r.position, r.duplicate) for r in receipts] == [
            ("a", 1, False),
            ("b", 2, False),
            ("a", 1, True),
            ("a", 1, True),
        ]
        assert ids(store.read()) == ["a", "b"]
        assert store.stream_version("contact:1") == 2

    def test_a_batch_of_known_and_new_events_stores_only_the_new(self, store, clock):
        store.append([new("a"), new("b")])
        clock.now += MINUTE
        receipts = store.append([new("x"), new("a"), new("y")])
        assert receipts == [
            Receipt("x", 3, START + MINUTE, duplicate=False),
            Receipt("a", 1, START, duplicate=True),
            Receipt("y", 4, START + MINUTE, duplicate=False),
        ]
        assert [e.version for e in store.read()] == [1, 2, 3, 4]

    def test_a_retried_batch_with_expected_versions_is_acknowledged(self, store, clock):
        batch = [new("a", "segment:s"), new("b", "segment:s"), new("c", "contact:1")]
        expected = {"segment:s": 0, "contact:1": 0}
        first = store.append(batch, expected)
        clock.now += MINUTE
        # The producer never saw the answer and sends the same request again.
        retry = store.append(batch, expected)
        assert [(r.event_id, r.position, r.recorded_at) for r in retry] == [
            (r.event_id, r.position, r.recorded_at) for r in first
        ]
        assert all(r.duplicate for r in retry)
        assert store.last_position() == 3
        assert store.stream_version("segment:s") == 2

    # ---- atomic batches ----

    @pytest.mark.parametrize(
        "bad",
        [
            new("bad", data=["not", "an", "object"]),
            new("bad", data="text"),
            new("bad", data=42),
            new("bad", data={"score": math.nan}),
            new("bad", data={"nested": [1, {"x": math.inf}]}),
            new("bad", data={"when": object()}),
            new("bad", data={"text": "broken \ud800 surrogate"}),
            new("bad", kind=""),
            new("", kind="page_viewed"),
            new("bad", stream=""),
            new("bad\udfff", kind="page_viewed"),
        ],
        ids=[
            "list",
            "string",
            "number",
            "nan",
            "nested-infinity",
            "not-json",
            "lone-surrogate-in-data",
            "empty-type",
            "empty-event-id",
            "empty-stream",
            "lone-surrogate-in-event-id",
        ],
    )
    def test_a_batch_with_an_invalid_event_stores_nothing(self, store, bad):
        store.append([new("before")])
        batch = [new("ok-0"), new("ok-1", "s:other"), bad, new("ok-3")]
        with pytest.raises(InvalidEventError) as info:
            store.append(batch)
        assert info.value.index == 2
        assert ids(store.read()) == ["before"]
        assert store.stream_version("s:other") == 0
        # Nothing was reserved either: the next append takes the next position.
        assert store.append([new("after")])[0].position == 2

    def test_a_batch_with_a_version_conflict_stores_nothing(self, store):
        store.append([new("s1", "segment:s")])
        batch = [new("c1", "contact:1"), new("s2", "segment:s"), new("c2", "contact:2")]
        with pytest.raises(ConcurrencyError) as info:
            store.append(batch, {"contact:1": 0, "segment:s": 5})
        assert (info.value.stream, info.value.expected, info.value.actual) == ("segment:s", 5, 1)
        assert ids(store.read()) == ["s1"]
        assert store.stream_version("contact:1") == 0
        assert store.stream_version("contact:2") == 0
        assert store.append([new("next")])[0].position == 2

    # ---- optimistic concurrency ----

    def test_expected_version_zero_means_a_new_stream(self, store):
        store.append([new("a", "segment:s")], {"segment:s": 0})
        with pytest.raises(ConcurrencyError) as info:
            store.append([new("b", "segment:s")], {"segment:s": 0})
        assert (info.value.stream, info.value.expected, info.value.actual) == ("segment:s", 0, 1)
        assert ids(store.read()) == ["a"]

    def test_the_right_expected_version_appends(self, store):
        store.append([new("a", "segment:s"), new("b", "segment:s")])
        store.append([new("c", "segment:s")], {"segment:s": 2})
        assert store.stream_version("segment:s") == 3
        with pytest.raises(ConcurrencyError) as info:
            store.append([new("d", "segment:s")], {"segment:s": 2})
        assert (info.value.expected, info.value.actual) == (2, 3)
        store.append([new("d", "segment:s")], {"segment:s": 3})
        assert ids(store.read_stream("segment:s")) == ["a", "b", "c", "d"]

    def test_a_stream_the_batch_leaves_alone_is_checked_too(self, store):
        """A segment definition guards the segments it refers to this way."""
        store.append([new("r1", "segment:ref")])
        store.append([new("a", "segment:a")], {"segment:a": 0, "segment:ref": 1})
        store.append([new("r2", "segment:ref")])
        with pytest.raises(ConcurrencyError) as info:
            store.append([new("b", "segment:a")], {"segment:a": 1, "segment:ref": 1})
        assert (info.value.stream, info.value.expected, info.value.actual) == ("segment:ref", 1, 2)
        assert ids(store.read()) == ["r1", "a", "r2"]

    def test_two_writers_with_the_same_expected_version_one_wins(self, open_store):
        store, other = open_store(), open_store()
        store.append([new("a", "segment:s")])
        version = other.stream_version("segment:s")
        store.append([new("mine", "segment:s")], {"segment:s": version})
        with pytest.raises(ConcurrencyError):
            other.append([new("theirs", "segment:s")], {"segment:s": version})
        assert ids(other.read_stream("segment:s")) == ["a", "mine"]

    def test_an_unchanged_guard_refuses_an_event_of_its_kind_appended_since(self, store):
        """Segment definitions guard each other this way: a decision read from them all."""
        store.append([new("a", "segment:a", "defined")])
        seen = store.last_position()
        store.append(
            [new("x", "segment:x", "defined")],
            unchanged=Unchanged(seen, "segment:", frozenset({"defined"})),
        )
        with pytest.raises(ConcurrencyError) as info:
            store.append(
                [new("b", "segment:b", "defined")],
                unchanged=Unchanged(seen, "segment:", frozenset({"defined", "changed"})),
            )
        assert (info.value.stream, info.value.expected, info.value.actual) == ("segment:x", 0, 1)
        assert ids(store.read()) == ["a", "x"]

    def test_an_unchanged_guard_ignores_other_kinds_and_other_streams(self, store):
        seen = store.append([new("a", "segment:a", "defined")])[0].position
        store.append(
            [
                new("edit", "segment:a", "members_added"),
                new("odd", "contact:1", "defined"),
                new("other", "segmentation:a", "defined"),
            ]
        )
        store.append(
            [new("b", "segment:b", "defined")],
            unchanged=Unchanged(seen, "segment:", frozenset({"defined"})),
        )
        assert ids(store.read_stream("segment:b")) == ["b"]

    def test_a_retried_batch_is_acknowledged_whatever_its_guard(self, store):
        guard = Unchanged(0, "segment:", frozenset({"defined"}))
        first = store.append([new("a", "segment:a", "defined")], unchanged=guard)
        retry = store.append([new("a", "segment:a", "defined")], unchanged=guard)
        assert retry[0].position == first[0].position and retry[0].duplicate

    def test_two_writers_guarded_from_the_same_position_one_wins(self, open_store):
        store, other = open_store(), open_store()
        store.append([new("a", "segment:a", "defined")])
        guard = Unchanged(other.last_position(), "segment:", frozenset({"defined"}))
        store.append([new("mine", "segment:b", "defined")], unchanged=guard)
        with pytest.raises(ConcurrencyError):
            other.append([new("theirs", "segment:c", "defined")], unchanged=guard)
        assert ids(other.read()) == ["a", "mine"]

    def test_one_wrong_stream_of_several_stores_nothing(self, store):
        store.append([new("a", "s:a"), new("b", "s:b")])
        with pytest.raises(ConcurrencyError) as info:
            store.append([new("a2", "s:a"), new("b2", "s:b")], {"s:a": 1, "s:b": 0})
        assert info.value.stream == "s:b"
        assert store.last_position() == 2

    # ---- ordering ----

    def test_positions_are_gapless_and_increasing_across_many_appends(self, store):
        rng = random.Random(7)
        acknowledged: list[int] = []
        for b in range(60):
            size = rng.randint(1, 7)
            batch = [new(f"b{b}-{i}", f"contact:{rng.randint(1, 5)}") for i in range(size)]
            acknowledged += [r.position for r in store.append(batch)]
        assert acknowledged == list(range(1, len(acknowledged) + 1))
        assert [e.position for e in store.read()] == acknowledged
        assert store.last_position() == len(acknowledged)

    def test_recorded_at_never_decreases_when_the_clock_goes_back(self, store, clock):
        assert store.append([new("a")])[0].recorded_at == START
        clock.now = START - 10 * MINUTE  # an NTP step backwards
        assert store.append([new("b")])[0].recorded_at == START
        clock.now = START + MINUTE
        assert store.append([new("c")])[0].recorded_at == START + MINUTE
        recorded = [e.recorded_at for e in store.read()]
        assert recorded == [START, START, START + MINUTE]

    def test_raising_the_clock_floor_holds_later_appends(self, open_store, clock):
        store = open_store()
        store.raise_clock_floor(START + 5 * MINUTE)
        assert store.append([new("a")])[0].recorded_at == START + 5 * MINUTE
        store.raise_clock_floor(START + MINUTE)  # a lower floor never lowers it
        assert store.append([new("b")])[0].recorded_at == START + 5 * MINUTE
        store.close()
        # The promise outlives the process that made it.
        again = open_store()
        again.append([new("c")])
        assert [e.recorded_at for e in again.read()] == [START + 5 * MINUTE] * 3
        clock.now = START + 9 * MINUTE
        assert again.append([new("d")])[0].recorded_at == START + 9 * MINUTE

    def test_the_clock_floor_holds_on_an_empty_log(self, store, clock):
        store.raise_clock_floor(START + 3)
        event = new("a")
        store.append([event])
        assert next(store.read()).recorded_at == START + 3

    def test_occurred_at_defaults_to_recorded_at(self, store, clock):
        store.append([new("a")])
        clock.now = START - MINUTE  # recorded_at is held at START; so is the default occurred_at
        store.append([new("b")])
        store.raise_clock_floor(START + MINUTE)
        store.append([new("c")])
        assert [(e.occurred_at, e.recorded_at) for e in store.read()] == [
            (START, START),
            (START, START),
            (START + MINUTE, START + MINUTE),
        ]

    def test_a_given_occurred_at_is_kept(self, store):
        store.append(
            [new("late", occurred_at=START - 86_400_000), new("future", occurred_at=START + 1)]
        )
        assert [(e.occurred_at, e.recorded_at) for e in store.read()] == [
            (START - 86_400_000, START),
            (START + 1, START),
        ]

    # ---- immutability, enforced by the database ----

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE events SET type = 'tampered' WHERE position = 1",
            "UPDATE events SET data = '{}' WHERE position = 2",
            "UPDATE events SET recorded_at = 0",
            "UPDATE events SET position = 99 WHERE position = 3",
        ],
    )
    def test_the_database_refuses_updates(self, store, sql):
        store.append([new("a", data={"v": 1}), new("b", data={"v": 2}), new("c", "s:x")])
        before = list(store.read())
        with pytest.raises(self.database_error):
            self.raw_execute(store, sql)
        assert list(store.read()) == before
        assert self.raw_execute(store, "SELECT count(*) FROM events") == [(3,)]

    @pytest.mark.parametrize(
        "sql",
        ["DELETE FROM events WHERE position = 1", "DELETE FROM events"],
    )
    def test_the_database_refuses_deletes(self, store, sql):
        store.append([new("a"), new("b")])
        before = list(store.read())
        with pytest.raises(self.database_error):
            self.raw_execute(store, sql)
        assert list(store.read()) == before
        assert store.append([new("c")])[0].position == 3

    # ---- the checkpoint facility ----

    @staticmethod
    def _apply_counts(transaction: Any, events: list[StoredEvent]) -> None:
        """A toy projection: how many events of each type, in a table of its own."""
        conn = transaction.connection
        conn.execute(
            "CREATE TABLE IF NOT EXISTS toy_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL)"
        )
        for event in events:
            assert event.type.isidentifier()  # safe to inline: no placeholders, any backend
            conn.execute(
                f"INSERT INTO toy_counts (type, n) VALUES ('{event.type}', 1)"
                " ON CONFLICT (type) DO UPDATE SET n = toy_counts.n + 1"
            )
            transaction.advance(event.position)

    def _counts(self, store: EventStore) -> dict[str, int]:
        return dict(self.raw_execute(store, "SELECT type, n FROM toy_counts"))

    def _run_projection(self, store: EventStore, name: str = "toy") -> int:
        with store.projection_transaction(name) as transaction:
            events = list(store.read(after=transaction.position))
            self._apply_counts(transaction, events)
            return transaction.position

    def test_a_projection_applies_events_and_advances(self, store):
        store.append([new("a", kind="opened"), new("b", kind="clicked"), new("c", kind="opened")])
        assert self._run_projection(store) == 3
        assert store.checkpoint("toy") == 3
        assert self._counts(store) == {"opened": 2, "clicked": 1}
        store.append([new("d", kind="opened")])
        # The second run starts from the checkpoint: nothing is counted twice.
        assert self._run_projection(store) == 4
        assert self._counts(store) == {"opened": 3, "clicked": 1}
        assert store.checkpoint("other") == 0

    def test_a_failed_projection_transaction_changes_nothing(self, store):
        store.append([new("a", kind="opened")])
        self._run_projection(store)
        store.append([new("b", kind="opened"), new("c", kind="clicked")])

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.projection_transaction("toy") as transaction:
            self._apply_counts(transaction, list(store.read(after=transaction.position)))
            assert transaction.position == 3
            raise Boom
        assert store.checkpoint("toy") == 1
        assert self._counts(store) == {"opened": 1}
        # A later run applies the same events exactly once.
        assert self._run_projection(store) == 3
        assert self._counts(store) == {"opened": 2, "clicked": 1}

    def test_a_failed_first_transaction_leaves_no_table_and_no_checkpoint(self, store):
        store.append([new("a", kind="opened")])

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.projection_transaction("toy") as transaction:
            self._apply_counts(transaction, list(store.read()))
            raise Boom
        assert store.checkpoint("toy") == 0
        with pytest.raises(self.database_error):
            self.raw_execute(store, "SELECT * FROM toy_counts")

    def test_a_checkpoint_survives_reopening(self, open_store):
        store = open_store()
        store.append([new("a", kind="opened"), new("b", kind="clicked")])
        self._run_projection(store, "toy")
        store.close()
        again = open_store()
        assert again.checkpoint("toy") == 2
        assert self._counts(again) == {"opened": 1, "clicked": 1}
        with again.projection_transaction("toy") as transaction:
            assert transaction.position == 2

    # ---- random histories against a model ----

    def test_random_histories_agree_with_a_model(self, tmp_path_factory):
        contract = self

        class Machine(StoreMachine):
            def new_location(self) -> str:
                return contract.new_location(tmp_path_factory.mktemp("machine"))

            def create_store(self, location: str, clock: FakeClock) -> EventStore:
                return contract.create_store(location, clock, page_size=3)

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=50,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )

    # ---- several processes ----

    def _spawn(self, location: str, name: str, *args: str, stdout: Any) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(APPENDER), self.child_factory, location, "--name", name, *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            },
        )

    @pytest.mark.slow
    def test_writers_in_several_processes_never_interleave(self, location, open_store, tmp_path):
        store = open_store(page_size=50)  # the schema exists before the writers race
        names = ["w0", "w1", "w2"]
        # Receipts go to files, so a writer never blocks on a full pipe while we tail the log.
        files = [(tmp_path / f"{name}.out").open("w") for name in names]
        writers = [
            self._spawn(
                location,
                name,
                *("--batches", "150", "--shared-every", "3", "--pause-ms", "2"),
                *("--barrier", str(tmp_path)),
                stdout=out,
            )
            for name, out in zip(names, files, strict=True)
        ]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{name}").exists() for name in names):
            assert all(w.poll() is None for w in writers), "a writer died before starting"
            assert time.monotonic() < deadline, "the writers did not start"
            time.sleep(0.005)
        (tmp_path / "go").touch()
        # Tail the log while they write: a reader must never see a later position first.
        seen, deadline = 0, time.monotonic() + 120
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            for event in store.read(after=seen):
                assert event.position == seen + 1, "a reader saw a gap in the log"
                seen = event.position
            time.sleep(0.002)
        outputs = []
        for writer, out, name in zip(writers, files, names, strict=True):
            _, err = writer.communicate(timeout=60)
            out.close()
            assert writer.returncode == 0, err
            text = (tmp_path / f"{name}.out").read_text()
            outputs.append([json.loads(line) for line in text.splitlines()])
        assert [len(o) for o in outputs] == [150, 150, 150]

        stored = list(store.read())
        by_id = {e.event_id: e for e in stored}
        assert [e.position for e in stored] == list(range(1, len(stored) + 1))
        assert len(by_id) == len(stored)
        assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(stored))

        # They really raced: the log alternates between writers many times.
        owners = [e.data["writer"] for e in stored if "writer" in e.data]  # shared: no one's
        switches = sum(a != b for a, b in itertools.pairwise(owners))
        assert switches > 50, f"only {switches} switches between writers"

        acknowledged: dict[str, list[list]] = defaultdict(list)
        for batches in outputs:
            for line in batches:
                fresh = [r[1] for r in line["receipts"] if not r[3]]
                if fresh:
                    # A batch's new events are stored together, in one run of positions.
                    assert fresh == list(range(fresh[0], fresh[0] + len(fresh)))
                for event_id, position, recorded_at, duplicate in line["receipts"]:
                    assert by_id[event_id].position == position
                    assert by_id[event_id].recorded_at == recorded_at
                    acknowledged[event_id].append([position, duplicate])
        assert set(acknowledged) == set(by_id)
        shared = [i for i in acknowledged if i.startswith("shared-")]
        assert len(shared) == 50
        for event_id in shared:
            # Every writer sent it; exactly one stored it, the others got its position.
            assert len(acknowledged[event_id]) == 3
            assert sum(not duplicate for _, duplicate in acknowledged[event_id]) == 1
            assert len({position for position, _ in acknowledged[event_id]}) == 1

        streams: dict[str, list[int]] = defaultdict(list)
        for event in stored:
            streams[event.stream].append(event.version)
        for stream, versions in streams.items():
            assert versions == list(range(1, len(versions) + 1)), stream
            assert store.stream_version(stream) == len(versions)

    @pytest.mark.slow
    def test_a_killed_writer_leaves_only_whole_acknowledged_batches(self, location, open_store):
        rng = random.Random(2026)
        open_store().close()
        acknowledged: dict[str, int] = {}
        for round_ in range(5):
            writer = self._spawn(location, f"r{round_}", "--max-size", "20", stdout=subprocess.PIPE)
            assert writer.stdout is not None and writer.stderr is not None
            seen = []
            for _ in range(rng.randint(1, 30)):
                line = writer.stdout.readline()
                assert line, writer.communicate()[1]
                seen.append(line)
            time.sleep(rng.uniform(0, 0.03))
            writer.send_signal(signal.SIGKILL)
            # Read on through the same buffered reader (communicate() would bypass its
            # buffer and start mid-line).
            with writer:
                out = "".join(seen) + writer.stdout.read()
                writer.stderr.read()
            assert writer.wait(timeout=30) == -signal.SIGKILL
            # Only whole lines were acknowledged; a line cut by the kill was not promised.
            lines = [line for line in out.split("\n")[:-1] if line]
            batches = [json.loads(line) for line in lines]
            for batch in batches:
                for event_id, position, _, duplicate in batch["receipts"]:
                    assert not duplicate
                    acknowledged[event_id] = position

            store = open_store()
            stored = list(store.read())
            by_id = {e.event_id: e.position for e in stored}
            for event_id, position in acknowledged.items():
                assert by_id.get(event_id) == position, event_id
            assert [e.position for e in stored] == list(range(1, len(stored) + 1))
            assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(stored))
            batches_stored: dict[tuple[str, int], list[StoredEvent]] = defaultdict(list)
            for event in stored:
                if "writer" in event.data:
                    batches_stored[event.data["writer"], event.data["batch"]].append(event)
            for (name, batch), events in batches_stored.items():
                assert len(events) == events[0].data["size"], (
                    f"{name} batch {batch} is half-written"
                )
                assert [e.position for e in events] == list(
                    range(events[0].position, events[0].position + len(events))
                )
            # The store goes on: the next append takes the next position.
            receipt = store.append([new(f"after-{round_}", "contact:parent")])[0]
            assert receipt.position == len(stored) + 1
            store.close()


IDS = [f"e{i}" for i in range(30)]
STREAMS = ["contact:a", "contact:b", "contact:c", "segment:s"]
TYPES = ["page_viewed", "email_opened", "contact_updated", "purchased"]
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_events = st.builds(
    NewEvent,
    event_id=st.sampled_from(IDS),
    stream=st.sampled_from(STREAMS),
    type=st.sampled_from(TYPES),
    data=st.dictionaries(_text, _json, max_size=3),
    occurred_at=st.none() | st.integers(START - 10**9, START + 10**9),
)
_invalid = st.sampled_from(
    [
        new("bad-list", data=[1, 2]),
        new("bad-nan", data={"x": math.nan}),
        new("bad-type", kind=""),
    ]
)


class StoreMachine(RuleBasedStateMachine):
    """Random appends (repeats, expected versions right and wrong, a clock that jumps back,
    floors, reopening) checked after every step against a plain in-memory log."""

    def new_location(self) -> str:
        raise NotImplementedError

    def create_store(self, location: str, clock: FakeClock) -> EventStore:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.location = self.new_location()
        self.store = self.create_store(self.location, self.clock)
        self.log: list[StoredEvent] = []
        self.positions: dict[str, int] = {}
        self.versions: Counter[str] = Counter()
        self.floor = 0

    def teardown(self) -> None:
        self.store.close()

    def _recorded_at(self) -> int:
        last = self.log[-1].recorded_at if self.log else 0
        return max(self.clock.now, last, self.floor)

    @rule(batch=st.lists(_events, max_size=6), data=st.data())
    def append(self, batch: list[NewEvent], data: st.DataObject) -> None:
        expected: dict[str, int] = {}
        for stream in sorted({e.stream for e in batch}):
            choice = data.draw(st.sampled_from(["none", "none", "right", "wrong"]))
            if choice == "right":
                expected[stream] = self.versions[stream]
            elif choice == "wrong":
                expected[stream] = self.versions[stream] + data.draw(st.sampled_from([-1, 1, 3]))
        fresh: dict[str, int] = {}
        for i, e in enumerate(batch):
            if e.event_id in self.positions:
                before = self.log[self.positions[e.event_id] - 1]
            elif e.event_id in fresh:
                before = batch[fresh[e.event_id]]  # type: ignore[assignment]
            else:
                fresh[e.event_id] = i
                continue
            if (before.stream, before.type, before.data) != (e.stream, e.type, e.data):
                # An id that names another event already: nothing is stored.
                with pytest.raises(EventIdReused) as reused:
                    self.store.append(batch, expected)
                assert (reused.value.index, reused.value.event_id) == (i, e.event_id)
                return
        # A batch whose events are all stored already is a retry: acknowledged, not refused;
        # otherwise every stream named in expected versions is checked.
        wrong = {s: want for s, want in expected.items() if fresh and self.versions[s] != want}
        if wrong:
            with pytest.raises(ConcurrencyError) as info:
                self.store.append(batch, expected)
            assert info.value.stream in wrong
            assert info.value.expected == wrong[info.value.stream]
            assert info.value.actual == self.versions[info.value.stream]
            return

        recorded_at = self._recorded_at()
        receipts = self.store.append(batch, expected or None)
        new_receipts: dict[str, Receipt] = {}
        for event_id, i in fresh.items():
            e = batch[i]
            self.versions[e.stream] += 1
            position = len(self.log) + 1
            occurred_at = recorded_at if e.occurred_at is None else e.occurred_at
            self.log.append(
                StoredEvent(
                    position,
                    event_id,
                    e.stream,
                    self.versions[e.stream],
                    e.type,
                    occurred_at,
                    recorded_at,
                    e.data,
                )
            )
            self.positions[event_id] = position
            new_receipts[event_id] = Receipt(event_id, position, recorded_at, duplicate=False)
        wanted = []
        for e in batch:
            first = new_receipts.pop(e.event_id, None)
            if first is None:
                stored = self.log[self.positions[e.event_id] - 1]
                first = Receipt(e.event_id, stored.position, stored.recorded_at, duplicate=True)
            wanted.append(first)
        assert receipts == wanted

    @rule(batch=st.lists(_events, max_size=4), bad=_invalid, data=st.data())
    def append_invalid(self, batch: list[NewEvent], bad: NewEvent, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(batch)))
        batch.insert(index, bad)
        with pytest.raises(InvalidEventError) as info:
            self.store.append(batch)
        assert info.value.index == index

    @rule(step=st.integers(-30 * MINUTE, 60 * MINUTE))
    def clock_moves(self, step: int) -> None:
        self.clock.now += step

    @rule(ahead=st.integers(0, 30 * MINUTE))
    def floor_raised(self, ahead: int) -> None:
        self.store.raise_clock_floor(self.clock.now + ahead)
        self.floor = max(self.floor, self.clock.now + ahead)

    @rule()
    def reopened(self) -> None:
        self.store.close()
        self.store = self.create_store(self.location, self.clock)

    @rule(after=st.integers(0, 60), limit=st.integers(0, 8))
    def read_a_page(self, after: int, limit: int) -> None:
        assert list(self.store.read(after, limit)) == self.log[after : after + limit]

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert self.store.last_position() == len(self.log)
        assert list(self.store.read()) == self.log
        for stream in STREAMS:
            assert self.store.stream_version(stream) == self.versions[stream]
            assert self.store.read_stream(stream) == [e for e in self.log if e.stream == stream]
