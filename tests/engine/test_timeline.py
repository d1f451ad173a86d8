"""The timeline replay (engine/timeline.py) rebuilds exactly the projection the projector
builds: the same transitions (instants, rule versions, causes), members, contacts, definitions
and checkpoint; and deadlines from which the projector carries on to the same future."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.common import DAY
from bench.replay import build_log
from engine.evaluate import Context, compile_rule
from engine.history import Event, History
from engine.projector import Projector
from engine.replay import replay
from engine.service import ContactEvent, Service
from engine.timeline import replay_timeline
from engine.timeline_defs import Unsupported
from engine.timeline_leaves import Leaves
from engine.timeline_log import Fields, read_log
from engine.timeline_steps import Axis
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore, to_json_text
from eventstore.sqlite_projection import SQLiteProjectionStore
from grammar import ast as a
from grammar import parse
from tests.engine import reference
from tests.engine.strategies import (
    BASE,
    PAYLOADS,
    SECOND,
    TYPES,
    aggregates,
    event_counts,
    properties,
    recencies,
)
from tests.engine.test_projector_properties import (
    Clock,
    Scenario,
    run_live,
    scenarios,
    transitions_of,
)


def contents(projection: SQLiteProjectionStore) -> dict:
    """Everything a replay must reproduce, deadlines aside."""
    return {
        "transitions": transitions_of(projection),
        "members": list(projection.all_members()),
        "member_counts": {s: projection.member_count(s) for s, _, _ in projection.all_members()},
        "contacts": sorted(projection.first_events(None, None).items()),
        "last_seen": sorted(projection.last_events(None, None).items()),
        "values": sorted(
            (prop, *row)
            for prop in ("country", "score", "signup", "amount", "url")
            for row in projection.values_of(prop)
        ),
        "definitions": projection.definitions(),
        "position": projection.checkpoint()[0],
    }


def carry_on(log: SQLiteEventStore, projection: SQLiteProjectionStore, until: int) -> list:
    """The projector picks up from a projection and lets time pass."""
    Projector(log, projection).advance(until)
    return transitions_of(projection)


# ---- against the live projector, on the projector's own scenarios ----


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario=scenarios())
def test_timeline_replay_equals_the_live_projection(tmp_path_factory, scenario):
    path = tmp_path_factory.mktemp("timeline")
    log, live, end = run_live(scenario, path)
    rebuilt = SQLiteProjectionStore(path / "timeline.db")
    replay_timeline(log, rebuilt, end)

    expected, found = contents(live), contents(rebuilt)
    assert rebuilt.checkpoint()[0] == live.checkpoint()[0]
    if live.checkpoint()[0]:  # an empty log leaves the projection as it was
        assert rebuilt.checkpoint()[1] == end
    assert found == expected
    # Rebuilt in the log's own file, the contact view is filled inside the database.
    in_place = in_place_copy(log, path / "in-place.db")
    replay_timeline(in_place, SQLiteProjectionStore(in_place.path), end)
    assert contents(SQLiteProjectionStore(in_place.path)) == expected
    # Deadlines: from both projections, the projector carries on to the same future.
    later = end + 120 * SECOND
    assert carry_on(log, rebuilt, later) == carry_on(log, live, later)


def test_a_log_the_timeline_cannot_order_is_replayed_by_the_projector(tmp_path):
    """Rules that refer to each other both ways at different times (never a cycle at any one
    instant) have no single order to compute them in: the timeline refuses the log, and
    replay(method="timeline") rebuilds it with the projector instead, to the same result."""
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "log.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "live.db"), clock)
    service.define_segment("B", "opened email")
    service.define_segment("A", 'in segment "B"')
    service.ingest([_opened("c1", BASE)])
    clock.now = BASE + SECOND
    service.change_rule("a", "purchased")
    service.change_rule("b", 'not in segment "A"')
    service.ingest([ContactEvent("c1", "purchased")])
    clock.now = BASE + 2 * SECOND
    service.catch_up()
    with pytest.raises(Unsupported, match="cycle"):
        replay_timeline(log, SQLiteProjectionStore(tmp_path / "refused.db"), clock.now)
    rebuilt = SQLiteProjectionStore(tmp_path / "rebuilt.db")
    replay(log, rebuilt, clock.now, method="timeline")
    assert len(transitions_of(rebuilt)) >= 3
    assert contents(rebuilt) == contents(service.projection)


def in_place_copy(log: SQLiteEventStore, path) -> SQLiteEventStore:
    """A copy of the log's file (with the projection it holds), to replay in place."""
    target = sqlite3.connect(path)
    with target:
        log.connection().backup(target)
    target.close()
    return SQLiteEventStore(path, Clock(BASE))


def test_a_change_due_when_a_referring_segment_is_defined(tmp_path):
    """s1 loses c1 by time at the very instant s2 = `not in segment s1` is defined: deadlines
    due at an instant fire before its entries, so c1 enters s2 because s2 was created, live,
    in the projector's replay and in the timeline replay alike."""
    opened = a.EventCount(a.EventSelector("email_opened"), window=a.Duration(5, a.Unit.SECONDS))
    scenario = Scenario(
        [
            ("define", 0, "s1", opened),
            ("events", 1, [("c1", "email_opened", 0, {})], True),
            ("tick", 5),
            ("define", 0, "s2", a.Not(a.InSegment("s1"))),
        ]
    )
    log, live, end = run_live(scenario, tmp_path)
    rebuilt = SQLiteProjectionStore(tmp_path / "timeline.db")
    replay_timeline(log, rebuilt, end)
    assert ("s2", "c1", "entered", BASE + 6 * SECOND, 1, ("created", 3)) in [
        (*t[:5], (t[5].kind, t[5].position)) for t in transitions_of(rebuilt)
    ]
    assert contents(rebuilt) == contents(live)
    scratch = SQLiteProjectionStore(tmp_path / "projector.db")
    Projector(log, scratch).advance(end)
    assert transitions_of(scratch) == transitions_of(live)


def test_true_and_1_are_leaves_apart(tmp_path):
    """`vip is true` and `vip = 1` are equal to Python (True == 1), not in meaning: the
    replay, which works a leaf out once for every rule that has it, keeps them apart, across
    rules, within one, and in event filters."""
    rules = {
        "flag-true": "vip is true",
        "flag-one": "vip = 1",
        "either": "vip is true or vip = 1",
        "no-gift": "purchased where gift is false and not purchased where gift = 0",
        "listed": "vip in (true, 2) and not vip in (1, 2)",
    }
    scenario = Scenario(
        [("define", 0, name, parse(rule)) for name, rule in rules.items()]
        + [
            (
                "events",
                1,
                [
                    ("t", "contact_updated", 0, {"vip": True}),
                    ("one", "contact_updated", 0, {"vip": 1}),
                    ("f", "purchased", 0, {"gift": False}),
                ],
                True,
            )
        ]
    )
    log, live, end = run_live(scenario, tmp_path)
    assert sorted((s, c) for s, c, _ in live.all_members()) == [
        ("either", "one"),
        ("either", "t"),
        ("flag-one", "one"),
        ("flag-true", "t"),
        ("listed", "t"),
        ("no-gift", "f"),
    ]
    rebuilt = SQLiteProjectionStore(tmp_path / "timeline.db")
    replay_timeline(log, rebuilt, end)
    assert contents(rebuilt) == contents(live)


def test_the_contact_view_filled_inside_the_database_has_the_same_texts(tmp_path):
    """Values SQLite would write differently (fractions, integers beyond 64 bits, nested
    values, escapes) keep the text the live projection gives them; a late assignment does
    not win, and of two at the same instant the later in the log does."""
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "log.db", clock)
    live = SQLiteProjectionStore(tmp_path / "log.db")
    service = Service(log, live, clock)
    awkward = {
        "fraction": 0.1 + 0.2,
        "tiny": 5e-324,
        "whole": 3.0,
        "minus_zero": -0.0,
        "big": 2**70,
        "int": -7,
        "nested": {"a": [1, 2.5, None], "b": "x"},
        "text": 'say "hi" \\ \n\x01\x1f Zürich 🚀',
        "yes": True,
        "no": False,
        "gone": None,
    }
    service.ingest([ContactEvent("c1", "contact_updated", awkward)])
    clock.now += SECOND
    service.ingest(
        [
            ContactEvent("c1", "contact_updated", {"text": "late"}, occurred_at=BASE - SECOND),
            ContactEvent("c2", "contact_updated", {"int": 1}, occurred_at=BASE),
            ContactEvent("c2", "contact_updated", {"int": 2}, occurred_at=BASE),
        ]
    )
    copy = in_place_copy(log, tmp_path / "copy.db")
    rebuilt = SQLiteProjectionStore(copy.path)
    replay_timeline(copy, rebuilt, clock.now)
    for prop in awkward:
        assert sorted(rebuilt.values_of(prop)) == sorted(live.values_of(prop)), prop
    assert dict((c, v) for c, v, _ in rebuilt.values_of("int")) == {"c1": "-7", "c2": "2"}
    assert [v for _, v, _ in rebuilt.values_of("text")] == [to_json_text(awkward["text"])]


def test_the_contact_view_is_filled_inside_the_database_only_where_the_log_is(tmp_path):
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "log.db", clock)
    log.append(
        [
            NewEvent("e1", "contact:c1", "contact_updated", {"score": 1.5}, BASE),
            # Not a contact's stream: no contact's view (the projector ignores it too).
            NewEvent("e2", "segment:s", "contact_updated", {"score": 2}, BASE),
        ]
    )
    here = SQLiteProjectionStore(tmp_path / "log.db")
    with here.contact_view_from_log(log.last_position()) as build:
        assert build is not None
        with here.session() as session:
            session.copy_contact_view(build)
            assert list(session.values_of("score")) == [("c1", "1.5", BASE)]
    assert list(log.population().latest_assignments(log.last_position())) == [
        ("c1", "score", 1.5, BASE, 1)
    ]
    with SQLiteProjectionStore(tmp_path / "elsewhere.db").contact_view_from_log(1) as build:
        assert build is None
    # The scratch file the build wrote is gone.
    assert sorted(p.name for p in tmp_path.iterdir() if "contact-view-" in p.name) == []


def test_an_empty_log(tmp_path):
    log = SQLiteEventStore(tmp_path / "log.db", Clock(BASE))
    rebuilt = SQLiteProjectionStore(tmp_path / "timeline.db")
    assert replay_timeline(log, rebuilt, BASE) is None
    assert contents(rebuilt)["transitions"] == []


def test_time_not_yet_past_the_last_instant(tmp_path):
    """Replayed as of an instant before the last entry, time still reaches that entry: a
    time-driven change due exactly then is applied, by the projector and the timeline alike."""
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "log.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "live.db"), clock)
    service.define_segment("Openers", "opened email within 5 seconds")
    service.ingest([_opened("c1", BASE), _opened("c2", BASE)])
    clock.now = BASE + 5 * SECOND
    log.append([NewEvent("x", "contact:c2", "page_viewed", {})])
    for rebuild in (replay, replay_timeline):
        projection = SQLiteProjectionStore(tmp_path / f"{rebuild.__name__}.db")
        rebuild(log, projection, BASE + 1)
        assert [t[:4] for t in transitions_of(projection)] == [
            ("openers", "c1", "entered", BASE),
            ("openers", "c1", "exited", BASE + 5 * SECOND),
            ("openers", "c2", "entered", BASE),
            ("openers", "c2", "exited", BASE + 5 * SECOND),
        ]


def _opened(contact: str, at: int) -> ContactEvent:
    return ContactEvent(contact, "email_opened", occurred_at=at)


def test_entries_in_the_replayed_instant_net_out_with_its_transitions(tmp_path):
    """More entries recorded in the very millisecond a set-wise replay stopped at: the
    projector finds that instant's transitions (the replay writes them last, though their
    segment comes first) and nets its changes out against them, as the live run does."""
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "log.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "live.db"), clock)
    service.define_segment("Quiet openers", "opened email within 1 day and not purchased")
    service.define_segment("Recent buyers", "purchased within 1 day")
    clock.now = BASE + SECOND
    service.ingest([ContactEvent("c2", "purchased")])
    clock.now = BASE + 5 * SECOND
    service.ingest([_opened("c1", clock.now)])
    rebuilt = SQLiteProjectionStore(tmp_path / "timeline.db")
    replay_timeline(log, rebuilt, clock.now)

    # The same millisecond: c1 buys, so it never was a quiet opener.
    service.ingest([ContactEvent("c1", "purchased")])
    Projector(log, rebuilt).advance(clock.now)
    assert transitions_of(rebuilt) == transitions_of(service.projection)
    assert [t[:3] for t in transitions_of(rebuilt)] == [
        ("recent-buyers", "c1", "entered"),
        ("recent-buyers", "c2", "entered"),
    ]


# ---- against the projector's replay, on generated marketing data ----


def test_timeline_replay_equals_projector_replay_on_generated_data(tmp_path):
    log = build_log(tmp_path / "log.db", 20_000, 2_000, seed=7, late=0.05, extras=True)
    now = log.connection().execute("SELECT max(recorded_at) FROM events").fetchone()[0] + DAY
    by_projector = SQLiteProjectionStore(tmp_path / "projector.db")
    by_timeline = SQLiteProjectionStore(tmp_path / "timeline.db")
    replay(log, by_projector, now)
    replay_timeline(log, by_timeline, now)
    expected, found = contents(by_projector), contents(by_timeline)
    assert len(expected["transitions"]) > 1_000
    assert {t[5].kind for t in expected["transitions"]} >= {"event", "time", "list_edit"}
    assert found == expected
    later = now + 40 * DAY
    assert carry_on(log, by_timeline, later) == carry_on(log, by_projector, later)


def test_readers_see_the_old_projection_until_the_replay_commits_the_new(tmp_path):
    """`flask replay` beside the service: the service never finds the projection emptied
    (its segments unknown, its checkpoint 0) while the replay works."""
    log = build_log(tmp_path / "log.db", 20_000, 2_000, seed=3)
    now = log.connection().execute("SELECT max(recorded_at) FROM events").fetchone()[0]
    replay_timeline(log, SQLiteProjectionStore(log.path), now)
    reader = SQLiteProjectionStore(log.path)

    def state() -> tuple:
        return reader.checkpoint(), len(reader.definitions()), reader.member_count("engaged")

    before = state()
    assert before[0][0] == log.last_position() and before[2] > 0
    seen = []
    replaying = threading.Thread(
        target=replay_timeline, args=(log, SQLiteProjectionStore(log.path), now)
    )
    replaying.start()
    while replaying.is_alive():
        seen.append(state())
    replaying.join()
    assert len(seen) > 10
    assert set(seen) == {before}


# ---- leaf by leaf, against the per-contact evaluator ----

leaf_rules = st.one_of(event_counts, aggregates, recencies, properties)


@st.composite
def contact_logs(draw: st.DrawFn) -> list[tuple[str, str, int, int, dict]]:
    """(contact, type, occurred_at, recorded_at, data) in log order, recorded_at never
    decreasing; occurred_at late, on time or ahead."""
    rows = []
    recorded = BASE
    for _ in range(draw(st.integers(0, 30))):
        recorded += draw(st.sampled_from([0, 0, 1, 3, 7])) * SECOND
        kind = draw(st.sampled_from(TYPES))
        occurred = recorded + draw(st.integers(-40, 5)) * SECOND
        contact = draw(st.sampled_from(["c1", "c2", "c3", "c4"]))
        rows.append((contact, kind, occurred, recorded, draw(PAYLOADS[kind])))
    return rows


def _store(tmp_path, rows: list[tuple[str, str, int, int, dict]]) -> SQLiteEventStore:
    clock = Clock(BASE)
    log = SQLiteEventStore(tmp_path / "leaf.db", clock)
    for i, (contact, kind, occurred, recorded, data) in enumerate(rows):
        clock.now = recorded
        log.append([NewEvent(f"e{i}", "contact:" + contact, kind, data, occurred)])
    return log


def _leaf_by_brute_force(rule: a.Condition, rows: list, contact: str, t: int) -> bool:
    events = [
        Event(i + 1, f"e{i}", kind, occurred, recorded, data)
        for i, (c, kind, occurred, recorded, data) in enumerate(rows)
        if c == contact and recorded <= t
    ]
    return reference.holds(rule, events, t, None)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=contact_logs(), rule=leaf_rules)
def test_each_leaf_matches_the_definition_at_every_instant(tmp_path_factory, rows, rule):
    log = _store(tmp_path_factory.mktemp("leaf"), rows)
    queries = log.population()
    data = read_log(queries, log.last_position())
    axis = Axis.for_log(len(data.events.contacts), BASE)
    fields = Fields(queries, data.events, data.last_position)
    leaves = Leaves(axis, data.events, fields, a.contact_properties(rule))
    steps = leaves.steps(rule)
    if isinstance(rule, a.EVENT_CONDITIONS):
        assert _same(leaves.fallback(rule), steps)
    instants = sorted(
        {BASE - SECOND} | {r[2] + d for r in rows for d in (0, 1)} | {r[3] for r in rows}
    )
    instants += [i + w for i in list(instants) for w in (1_000, 5_000, 40_000, 60_000)]
    for x, contact in enumerate(data.events.contacts):
        keys = axis.key(np.full(len(instants), x), np.array(instants))
        found = steps.at(axis, keys)
        for t, value in zip(instants, found.tolist(), strict=True):
            assert value == _leaf_by_brute_force(rule, rows, contact, t), (contact, t)


def _same(left, right) -> bool:
    return (
        left.init == right.init
        and np.array_equal(left.keys, right.keys)
        and np.array_equal(left.vals, right.vals)
    )


@pytest.mark.parametrize(
    ("rule", "amounts", "expected"),
    [
        # Floats add these up to 0.30000000000000004, 0.6000000000000001, 30.299999999999997
        # and 0.7999999999999999; a marketer adds up the numbers as written.
        ("total amount of purchased >= 0.3", [0.1, 0.2], True),
        ("total amount of purchased = 0.3", [0.1, 0.2], True),
        ("total amount of purchased = 0.6", [0.1, 0.2, 0.3], True),
        ("total amount of purchased <= 0.6", [0.3, 0.2, 0.1], True),
        ("total amount of purchased >= 30.3", [10.1, 20.2], True),
        ("total amount of purchased >= 0.8", [0.7, 0.1], True),
        ("total amount of purchased > 0.8", [0.7, 0.1], False),
        ("average amount of purchased = 0.2", [0.1, 0.2, 0.3], True),
        ("average amount of purchased < 15.15", [10.1, 20.2], False),
        ("total amount of purchased != 10", [4, 6], False),
        ("total amount of purchased = 10", [4, 6.0], True),
    ],
)
def test_sums_of_the_numbers_as_written(tmp_path, rule, amounts, expected):
    rows = [("c1", "purchased", BASE + i, BASE + i, {"amount": x}) for i, x in enumerate(amounts)]
    log = _store(tmp_path, rows)
    queries = log.population()
    data = read_log(queries, log.last_position())
    axis = Axis.for_log(1, BASE)
    leaves = Leaves(axis, data.events, Fields(queries, data.events, data.last_position), [])
    node = parse(rule)
    t = BASE + len(amounts)
    value = leaves.steps(node).at(axis, axis.key(np.zeros(1, np.int64), t))[0]
    history_events = [Event(i, "", k, o, r, d) for i, (_, k, o, r, d) in enumerate(rows)]
    assert compile_rule(node).evaluate(Context(History(history_events)), t)[0] == expected
    assert value == expected


def test_a_running_sum_past_a_double_leaves_the_next_contact_s_sum_right(tmp_path):
    # Summed across contacts in one array: the first contact's 1e308s make it infinite, and
    # the second's share of it, infinity less infinity, NaN.
    amounts = [("c1", 1e308), ("c1", 1e308), ("c2", 5), ("c2", 6)]
    rows = [(c, "purchased", BASE + i, BASE + i, {"amount": x}) for i, (c, x) in enumerate(amounts)]
    log = _store(tmp_path, rows)
    queries = log.population()
    data = read_log(queries, log.last_position())
    axis = Axis.for_log(2, BASE)
    leaves = Leaves(axis, data.events, Fields(queries, data.events, data.last_position), [])
    t = BASE + len(amounts)
    for rule, expected in [
        ("total amount of purchased >= 11", [True, True]),
        ("total amount of purchased < 12", [False, True]),
    ]:
        steps = leaves.steps(parse(rule))
        found = steps.at(axis, axis.key(np.arange(2, dtype=np.int64), t))
        assert found.tolist() == expected, rule
