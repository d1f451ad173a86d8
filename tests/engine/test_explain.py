"""Explanations give their evidence whole: every event counted, and how many."""

from __future__ import annotations

from engine.evaluate import Context, compile_rule
from engine.history import Event, History
from grammar import parse

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
