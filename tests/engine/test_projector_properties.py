"""The live projection equals a replay of the log, and both equal membership as RULES.md
defines it, checked second by second by brute force."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.history import Event
from engine.projector import Projector
from engine.segments import (
    MEMBERS_ADDED,
    MEMBERS_REMOVED,
    SEGMENT_ARCHIVED,
    SEGMENT_DEFINED,
    SEGMENT_RULE_CHANGED,
)
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from grammar import ast as a
from grammar.serialize import to_json
from tests.clock import Clock
from tests.engine import reference
from tests.engine.strategies import BASE, PAYLOADS, SECOND, TYPES, leaves, rules

CONTACTS = ("c1", "c2", "c3")


@dataclass
class Scenario:
    steps: list[tuple] = field(default_factory=list)


def _with_reference(rule_strategy: st.SearchStrategy, refs: list[str]) -> st.SearchStrategy:
    if not refs:
        return rule_strategy
    ref = st.sampled_from(refs).map(a.InSegment)
    return st.one_of(
        rule_strategy,
        st.builds(lambda r, s: a.And((r, s)), rule_strategy, ref),
        st.builds(lambda r, s: a.Or((a.Not(s), r)), rule_strategy, ref),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    steps: list[tuple] = []
    dynamic: list[str] = []
    static: list[str] = []
    archived: set[str] = set()
    uses: dict[str, set[str]] = {}  # segment -> segments its current rule refers to

    def live(names: list[str]) -> list[str]:
        return [x for x in names if x not in archived]

    n = 0
    for _ in range(draw(st.integers(4, 18))):
        kind = draw(
            st.sampled_from(
                [
                    "events",
                    "events",
                    "events",
                    "define",
                    "change",
                    "static",
                    "edit",
                    "tick",
                    "archive",
                ]
            )
        )
        wait = draw(st.sampled_from([0, 0, 1, 2, 5, 13]))
        if kind == "events":
            batch = []
            for _ in range(draw(st.integers(1, 3))):
                event_type = draw(st.sampled_from(TYPES))
                batch.append(
                    (
                        draw(st.sampled_from(CONTACTS)),
                        event_type,
                        draw(st.integers(-20, 3)),  # seconds from now: late, on time, future
                        draw(PAYLOADS[event_type]),
                    )
                )
            steps.append(("events", wait, batch, draw(st.booleans())))
        elif kind == "define" or (kind == "change" and not live(dynamic)):
            n += 1
            name = f"s{n}"
            rule = draw(_with_reference(rules if n % 2 else leaves, live(dynamic + static)))
            steps.append(("define", wait, name, rule))
            dynamic.append(name)
            uses[name] = set(a.segment_refs(rule))
        elif kind == "change":
            name = draw(st.sampled_from(live(dynamic)))
            earlier = [x for x in live(dynamic + static) if x < name or x.startswith("l")]
            earlier = [x for x in earlier if name not in _closure(x, uses)]
            rule = draw(_with_reference(leaves, earlier))
            steps.append(("change", wait, name, rule))
            uses[name] = set(a.segment_refs(rule))
        elif kind == "static" or (kind == "edit" and not live(static)):
            n += 1
            steps.append(("static", wait, f"l{n}"))
            static.append(f"l{n}")
        elif kind == "edit":
            steps.append(
                (
                    "edit",
                    wait,
                    draw(st.sampled_from(live(static))),
                    draw(st.booleans()),
                    draw(st.lists(st.sampled_from(CONTACTS), min_size=1, max_size=2, unique=True)),
                )
            )
        elif kind == "archive":
            unused = [
                x
                for x in live(dynamic + static)
                if not any(x in uses.get(y, ()) for y in live(dynamic))
            ]
            if unused:
                name = draw(st.sampled_from(unused))
                archived.add(name)
                steps.append(("archive", wait, name))
        else:
            steps.append(("tick", wait))
    return Scenario(steps)


def _closure(name: str, uses: dict[str, set[str]]) -> set[str]:
    seen, stack = set(), [name]
    while stack:
        x = stack.pop()
        if x not in seen:
            seen.add(x)
            stack.extend(uses.get(x, ()))
    return seen


def definition(name: str, rule: a.Condition) -> dict:
    return {
        "name": name,
        "kind": "dynamic",
        "rule": name,
        "ast": to_json(rule),
        "references": {r: r for r in a.segment_refs(rule)},
    }


def run_live(
    scenario: Scenario, path, processes: int = 1, foresee: bool = False
) -> tuple[SQLiteEventStore, SQLiteProjectionStore, int]:
    """Run a scenario live; with several `processes`, projectors on the one projection take
    turns, as processes sharing a database do; with `foresee`, each works out forecasts of
    deadlines set without one, a few at a time, after each catch-up."""
    clock = Clock(BASE)
    log = SQLiteEventStore(path / "log.db", clock)
    projection = SQLiteProjectionStore(path / "log.db")
    projectors = itertools.cycle(
        [
            Projector(log, projection, page_size=4, deadline_batch=3, deadline_slice=2)
            for _ in range(processes)
        ]
    )

    def advance(now: int) -> None:
        projector = next(projectors)
        projector.advance(now)
        if foresee:
            projector.foresee(2, window=3)

    ids = iter(range(1, 10_000))
    for step in scenario.steps:
        clock.now += step[1] * SECOND
        if step[0] == "events":
            _, _, batch, sync = step
            log.append(
                [
                    NewEvent(
                        f"e{next(ids)}",
                        "contact:" + contact,
                        event_type,
                        data,
                        clock.now + offset * SECOND,
                    )
                    for contact, event_type, offset, data in batch
                ]
            )
            if sync:
                advance(clock.now)
        elif step[0] == "define":
            _, _, name, rule = step
            log.append(
                [
                    NewEvent(
                        f"d{next(ids)}", f"segment:{name}", SEGMENT_DEFINED, definition(name, rule)
                    )
                ]
            )
            advance(clock.now)
        elif step[0] == "change":
            _, _, name, rule = step
            data = definition(name, rule)
            log.append([NewEvent(f"d{next(ids)}", f"segment:{name}", SEGMENT_RULE_CHANGED, data)])
            advance(clock.now)
        elif step[0] == "static":
            _, _, name = step
            data = {"name": name, "kind": "static"}
            log.append([NewEvent(f"d{next(ids)}", f"segment:{name}", SEGMENT_DEFINED, data)])
        elif step[0] == "edit":
            _, _, name, add, contacts = step
            kind = MEMBERS_ADDED if add else MEMBERS_REMOVED
            log.append([NewEvent(f"d{next(ids)}", f"segment:{name}", kind, {"contacts": contacts})])
        elif step[0] == "archive":
            _, _, name = step
            log.append([NewEvent(f"d{next(ids)}", f"segment:{name}", SEGMENT_ARCHIVED, {})])
        else:
            advance(clock.now)
    clock.now += 60 * SECOND
    advance(clock.now)
    return log, projection, clock.now


def brute_force(log: SQLiteEventStore, end: int) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Change points of membership, second by second, straight from the log."""
    entries = list(log.read())
    versions: dict[str, list[tuple[int, a.Condition | None]]] = {}
    edits: dict[str, list] = {}
    archived: dict[str, int] = {}
    events: dict[str, list[Event]] = {c: [] for c in CONTACTS}
    from grammar.serialize import from_json

    for e in entries:
        if e.stream.startswith("segment:"):
            sid = e.stream[len("segment:") :]
            if e.type in (SEGMENT_DEFINED, SEGMENT_RULE_CHANGED):
                rule = (
                    from_json(e.data["ast"]) if e.data.get("kind", "dynamic") == "dynamic" else None
                )
                versions.setdefault(sid, []).append((e.recorded_at, rule))
            elif e.type == SEGMENT_ARCHIVED:
                archived[sid] = e.recorded_at
            else:
                edits.setdefault(sid, []).append(e)
        else:
            c = e.stream[len("contact:") :]
            events[c].append(
                Event(e.position, e.event_id, e.type, e.occurred_at, e.recorded_at, e.data)
            )

    def member(sid: str, contact: str, t: int) -> bool:
        defs = [v for v in versions[sid] if v[0] <= t]
        if not defs or archived.get(sid, t + 1) <= t:
            return False
        rule = defs[-1][1]
        if rule is None:
            latest = None
            for e in edits.get(sid, []):
                if e.recorded_at <= t and contact in e.data["contacts"]:
                    latest = e.type == MEMBERS_ADDED
            return bool(latest)
        known = [e for e in events[contact] if e.recorded_at <= t]
        return reference.member(rule, known, t, lambda ref, at: member(ref, contact, at))

    changes: dict[tuple[str, str], list[tuple[str, int]]] = {}
    start = entries[0].recorded_at - SECOND if entries else BASE
    for sid in versions:
        for contact in CONTACTS:
            state = False
            for t in range(start, end + 1, SECOND):
                now = member(sid, contact, t)
                if now != state:
                    changes.setdefault((sid, contact), []).append(
                        ("entered" if now else "exited", t)
                    )
                    state = now
    return changes


def transitions_of(projection: SQLiteProjectionStore) -> list[tuple]:
    return [
        (t.segment_id, t.contact_id, t.kind, t.at, t.rule_version, t.cause)
        for t in projection.all_transitions()
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario=scenarios(), processes=st.sampled_from([1, 2]), foresee=st.booleans())
def test_live_replay_and_definition_agree(tmp_path_factory, scenario, processes, foresee):
    path = tmp_path_factory.mktemp("live")
    log, live, end = run_live(scenario, path, processes, foresee)

    # The live run settles deadlines from their forecasts; the replay evaluates at each one,
    # keeps one contact's history at a time (the others are read back from the log), reads
    # due deadlines two at a time and commits after each instant's (the live run after two).
    scratch = SQLiteProjectionStore(path / "replay.db")
    replayer = Projector(
        log, scratch, forecasts=False, history_cache=1, deadline_batch=2, deadline_slice=1
    )
    replayer.advance(end)
    assert transitions_of(scratch) == transitions_of(live)
    assert list(scratch.all_members()) == list(live.all_members())
    for projection in (live, scratch):
        members = Counter(segment for segment, _, _ in projection.all_members())
        segments = {t.segment_id for t in projection.all_transitions()}
        assert {s: projection.member_count(s) for s in segments} == {
            s: members[s] for s in segments
        }

    expected = brute_force(log, end)
    found: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for t in live.all_transitions():
        found.setdefault((t.segment_id, t.contact_id), []).append((t.kind, t.at))
    assert found == expected
