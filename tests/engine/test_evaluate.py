"""The evaluator agrees with the brute-force reading of RULES.md, boundaries included."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import Context, compile_rule, evaluate_member
from engine.history import INDEXED_FROM, Event, History
from grammar import ast as a
from grammar import parse
from tests.engine import reference
from tests.engine.strategies import (
    BASE,
    SECOND,
    SPAN,
    histories,
    interesting_instants,
    leaves,
    rules,
    windows_of,
)

DAY = 86_400_000
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def horizon(rule: a.Condition, events: list[Event]) -> int:
    """After this instant nothing in the rule can change any more."""
    longest = max(windows_of(rule), default=0)
    return BASE + SPAN * SECOND * 3 + longest + 2 * SECOND


def engine_at(
    rule: a.Condition, events: list[Event], t: int, indexed_from: int = INDEXED_FROM
) -> tuple[bool, int | None]:
    return evaluate_member(compile_rule(rule), Context(History(events, indexed_from)), t)


# A history answers by scanning its events, or from its indexes (past INDEXED_FROM events).
shapes = st.sampled_from([0, INDEXED_FROM])


@SETTINGS
@given(rule=rules, events=histories(), data=st.data(), shape=shapes)
def test_value_agrees_with_the_reference(rule, events, data, shape):
    t = data.draw(st.sampled_from(interesting_instants(rule, events)))
    assert engine_at(rule, events, t, shape)[0] == reference.member(rule, events, t)


@SETTINGS
@given(rule=leaves, events=histories(), data=st.data(), shape=shapes)
def test_a_leaf_knows_exactly_when_it_next_changes(rule, events, data, shape):
    t = data.draw(st.sampled_from(interesting_instants(rule, events)))
    _, nxt = engine_at(rule, events, t, shape)
    truth = reference.true_next_change(
        lambda i: reference.member(rule, events, i), t, horizon(rule, events)
    )
    assert nxt == truth


@SETTINGS
@given(rule=rules, events=histories(), data=st.data(), shape=shapes)
def test_following_next_changes_finds_the_true_change(rule, events, data, shape):
    """The next change is a lower bound; following it never skips the real change."""
    t = data.draw(st.sampled_from(interesting_instants(rule, events)))
    end = horizon(rule, events)
    truth = reference.true_next_change(lambda i: reference.member(rule, events, i), t, end)
    value, instant = engine_at(rule, events, t, shape)
    while instant is not None and (truth is None or instant < truth):
        assert instant > t
        again, instant_after = engine_at(rule, events, instant, shape)
        assert again == value, "a bound was not a lower bound"
        t, instant = instant, instant_after
        if t > end:
            break
    if truth is not None:
        assert instant == truth


@pytest.mark.parametrize("op", list(a.CountOp))
@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("seconds", [[0, 0], [0, 1, 1, 2], [0, 0, 0, 3]])
def test_events_of_one_instant_leave_their_window_together(op, k, seconds):
    """Two events dated alike leave at once: the count can skip k, and change nothing then."""
    rule = a.EventCount(
        a.EventSelector("email_opened", None), a.Count(op, k), a.Duration(5, a.Unit.SECONDS)
    )
    events = [_event(i, "email_opened", BASE + s * SECOND) for i, s in enumerate(seconds, 1)]
    end = BASE + 10 * SECOND
    for t in range(BASE - SECOND, end, SECOND):
        truth = reference.true_next_change(lambda i: reference.member(rule, events, i), t, end)
        assert engine_at(rule, events, t)[1] == truth, t - BASE


def _event(position: int, kind: str, occurred: int, **data: object) -> Event:
    return Event(position, f"e{position}", kind, occurred, occurred, data)


def test_a_window_includes_its_end_and_excludes_its_start():
    opened = a.EventCount(a.EventSelector("email_opened"), window=a.Duration(7, a.Unit.DAYS))
    t0 = BASE
    events = [_event(1, "email_opened", t0)]
    assert engine_at(opened, events, t0) == (True, t0 + 7 * DAY)
    assert engine_at(opened, events, t0 + 7 * DAY - 1) == (True, t0 + 7 * DAY)
    assert engine_at(opened, events, t0 + 7 * DAY) == (False, None)
    assert engine_at(opened, events, t0 - 1) == (False, t0)


def test_has_never_purchased_turns_false_when_a_dated_purchase_arrives_in_time():
    never = a.EventCount(a.EventSelector("purchased"), a.Count(a.CountOp.EXACTLY, 0))
    events = [_event(1, "signed_up", BASE), _event(2, "purchased", BASE + 5 * DAY)]
    assert engine_at(never, events, BASE + DAY) == (True, BASE + 5 * DAY)
    assert engine_at(never, events, BASE + 5 * DAY) == (False, None)


def test_last_purchased_more_than_30_days_ago():
    rule = a.Recency(
        a.Which.LAST,
        a.EventSelector("purchased"),
        a.RecencyOp.MORE_THAN_AGO,
        a.Duration(30, a.Unit.DAYS),
    )
    events = [_event(1, "purchased", BASE), _event(2, "purchased", BASE + 10 * DAY)]
    assert engine_at(rule, events, BASE + 39 * DAY) == (False, BASE + 40 * DAY)
    assert engine_at(rule, events, BASE + 40 * DAY) == (True, None)


def test_a_property_with_no_value_is_not_not_mobile():
    """`is not` is the negation of `is`: true when the property is unknown."""
    rule = a.Compare("device_type", a.CompareOp.NE, "mobile")
    assert engine_at(rule, [_event(1, "page_viewed", BASE)], BASE)[0] is True
    updated = [_event(1, "contact_updated", BASE, device_type="Mobile")]
    assert engine_at(rule, updated, BASE)[0] is False


def test_the_latest_property_value_wins_ties_by_position():
    rule = a.Compare("country", a.CompareOp.EQ, "DE")
    events = [
        _event(1, "contact_updated", BASE, country="FR"),
        _event(2, "contact_updated", BASE, country="DE"),
        _event(3, "contact_updated", BASE - DAY, country="AT"),
    ]
    assert engine_at(rule, events, BASE)[0] is True
    assert engine_at(rule, events, BASE - 1)[0] is False


def test_a_contact_without_events_is_in_no_segment():
    rule = a.Not(a.EventCount(a.EventSelector("purchased")))
    assert engine_at(rule, [], BASE) == (False, None)


@pytest.mark.parametrize(
    ("rule", "events"),
    [
        # An int and a float compare exactly: 123456789012345678.0 is 123456789012345680.
        ("score > 123456789012345677", [("contact_updated", {"score": 123456789012345678.0})]),
        ("average amount of purchased > 4611686018427387903", [("purchased", {"amount": 2**62})]),
        ("total amount of purchased >= 100", [("purchased", {"amount": 1e308})] * 2),
        ("total amount of purchased < 0", [("purchased", {"amount": -1e308})] * 2),
    ],
)
def test_numbers_at_the_edges_of_a_double_agree_with_the_reference(rule, events):
    history = [_event(i + 1, kind, BASE, **data) for i, (kind, data) in enumerate(events)]
    node = parse(rule)
    assert engine_at(node, history, BASE)[0] is True
    assert reference.member(node, history, BASE) is True
