"""Explanations list their evidence, and stay a readable size for a contact with many events."""

from __future__ import annotations

from engine.evaluate import EVIDENCE_LIMIT, Context, compile_rule
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


def test_a_clause_lists_the_latest_events_and_counts_them_all():
    history = opens_and_purchases(EVIDENCE_LIMIT + 500, EVIDENCE_LIMIT + 1)
    t = T0 + 10 * EVIDENCE_LIMIT
    rule = parse("opened email at least 3 times and total amount of purchased >= 20")
    tree = compile_rule(rule).explain(Context(history), t)
    opened, spent = tree.children
    assert opened.details["count"] == EVIDENCE_LIMIT + 500
    listed = [e["event_id"] for e in opened.details["events"]]
    assert listed == [f"o-{i}" for i in range(500, EVIDENCE_LIMIT + 500)]
    assert spent.details["count"] == EVIDENCE_LIMIT + 1
    assert spent.details["aggregate"] == 10 * (EVIDENCE_LIMIT + 1)
    assert spent.details["events"][0]["event_id"] == "p-1"
    assert len(spent.details["events"]) == EVIDENCE_LIMIT


def test_a_short_history_is_listed_whole():
    history = opens_and_purchases(3, 2)
    tree = compile_rule(parse("total amount of purchased >= 20")).explain(Context(history), T0 + 9)
    assert tree.value is True
    assert tree.details["count"] == 2
    assert [e["event_id"] for e in tree.details["events"]] == ["p-0", "p-1"]
