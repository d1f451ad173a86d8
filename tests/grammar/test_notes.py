"""Notes point out readings of a valid rule that may not be the ones meant."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grammar import ast as a
from grammar import format_rule, notes, parse
from tests.grammar.builders import same
from tests.grammar.strategies import event_types, property_filters, rules


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        (
            'purchased where amount > 100 and sku is "B"',
            (1, 34),
            'where (amount > 100 and sku is "B")',
        ),
        (
            "not purchased where amount > 100 or not amount < 5",
            (1, 37),
            "where (amount > 100 or not amount < 5)",
        ),
        (
            '  purchased where amount > 100\n  AND sku is "B" and opened email',
            (2, 7),
            'where (amount > 100 and sku is "B")',
        ),
        (
            'has never purchased where gift is true and sku is "B"',
            (1, 44),
            'where (gift is true and sku is "B")',
        ),
    ],
)
def test_a_condition_after_a_where_that_joins_the_rule_is_pointed_out(text, where, hint):
    (note,) = notes(parse(text), text)
    assert (note.line, note.column) == where
    assert "a condition on the contact" in note.message
    assert note.hint is not None and note.hint.endswith(hint)


@pytest.mark.parametrize(
    "text",
    [
        '(purchased where amount > 100) and sku is "B"',  # said so with parentheses
        'purchased where (amount > 100) and sku is "B"',
        'purchased where (amount > 100 and sku is "B")',
        'purchased where amount > 100 within 30 days and sku is "B"',  # the clause went on
        'purchased where amount > 100 at least 2 times and sku is "B"',
        "total amount of purchased where gift is false >= 10 and vip is true",
        'submitted form "demo" and country is "DE"',  # a shorthand, not a where
        'opened email within 7 days and country is "DE"',
        "purchased where amount > 100 and opened email",  # an event clause after it
    ],
)
def test_a_rule_that_says_what_it_means_has_no_notes(text):
    assert notes(parse(text), text) == []


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules)
def test_a_note_points_at_the_condition_it_names(rule):
    text = format_rule(rule)
    lines = text.split("\n")
    for note in notes(parse(text), text):
        named = note.message.split("`")[1]
        assert lines[note.line - 1][note.column - 1 :].startswith(named), (text, note)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=event_types,
    where=property_filters,
    condition=property_filters,
    joined=st.sampled_from([a.And, a.Or]),
)
def test_the_hint_s_rewrite_reads_the_condition_as_part_of_the_filter(
    kind, where, condition, joined
):
    rule = joined((a.EventCount(a.EventSelector(kind, where)), condition))
    text = format_rule(rule)
    assume(" where " in text)  # not written as a shorthand (`submitted form "x"`)
    (note,) = notes(parse(text), text)
    assert note.message.startswith(f"`{format_rule(condition)}`")
    assert note.hint is not None
    rewritten = text[: text.index(" where ")] + " " + note.hint.split(", write ")[1]
    meant = a.EventCount(a.EventSelector(kind, joined((where, condition))))
    assert same(parse(rewritten), meant), rewritten
    assert notes(parse(rewritten), rewritten) == []
