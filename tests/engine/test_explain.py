"""Explanations give their evidence whole: every event counted, and how many."""

from __future__ import annotations

from engine.asof import AsOfSegments
from engine.evaluate import Context, Explanation, compile_rule
from engine.histories import to_event
from engine.history import Event, History
from engine.service import ContactEvent, Service
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from grammar import parse
from tests.clock import START, Clock

T0 = 1_767_225_600_000


def opens_and_purchases(opens: int, purchases: int) -> History:
    events = [Event(i + 1, f"o-{i}", "email_opened", T0 + i, T0, {}) for i in range(opens)]
    events += [
        Event(opens + i + 1, f"p-{i}", "purchased", T0 + opens + i, T0, {"amount": 10})
        for i in range(purchases)
    ]
    return History(events)


def test_each_clause_lists_every_event_it_counted_and_counts_them():
    history = opens_and_purchases(1_500, 1_200)
    t = T0 + 10_000
    rule = parse("opened email at least 3 times and total amount of purchased >= 20")
    tree = compile_rule(rule).explain(Context(history), t)
    opened, spent = tree.children
    assert opened.details["count"] == 1_500
    assert [e["event_id"] for e in opened.details["events"]] == [f"o-{i}" for i in range(1_500)]
    assert spent.details["count"] == 1_200 == len(spent.details["events"])
    assert spent.details["aggregate"] == 12_000


def test_an_aggregate_counts_only_the_events_it_used():
    history = History(
        [
            Event(1, "p-0", "purchased", T0, T0, {"amount": 10}),
            Event(2, "p-1", "purchased", T0 + 1, T0, {"amount": "ten"}),  # not a number
            Event(3, "p-2", "purchased", T0 + 2, T0, {"amount": 15}),
        ]
    )
    tree = compile_rule(parse("total amount of purchased >= 20")).explain(Context(history), T0 + 9)
    assert tree.value is True
    assert tree.details["count"] == 2
    assert [e["event_id"] for e in tree.details["events"]] == ["p-0", "p-2"]


class CountingAsOf(AsOfSegments):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.evaluated = 0

    def _membership(self, segment_id: str, t: int):
        self.evaluated += 1
        return super()._membership(segment_id, t)


def nodes(tree: Explanation) -> int:
    return 1 + sum(nodes(child) for child in tree.children)


def test_segments_referred_to_many_times_over_levels_are_worked_out_once(tmp_path):
    """Five levels, each referring twenty times to the one below: 20 ** 4 evaluations of the
    lowest, and an explanation as large, were each segment worked out at each reference."""
    clock = Clock(START)
    log = SQLiteEventStore(tmp_path / "s.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "s.db"), clock)
    service.define_segment("L0", "opened email")
    for level in range(1, 5):
        service.define_segment(f"L{level}", " or ".join([f"in segment l{level - 1}"] * 20))
    service.ingest([ContactEvent("ann", "email_opened")])
    history = History([to_event(e) for e in log.read_stream("contact:ann")])
    t = clock()

    asof = CountingAsOf(service.registry, history, lambda _: [], "ann")
    assert [asof.membership(f"l{level}", t)[0] for level in range(5)] == [True] * 5
    assert asof.evaluated == 5

    tree = CountingAsOf(service.registry, history, lambda _: [], "ann").explain("l4", t)
    assert tree.value is True
    assert nodes(tree) < 5 * 50  # each level's tree once (about 42 nodes), not 20 ** 4 of them
    shown = [n for n in _walk(tree) if n.details.get("shown_above")]
    assert len(shown) == 4 * 19


def _walk(tree: Explanation):
    yield tree
    for child in tree.children:
        yield from _walk(child)
