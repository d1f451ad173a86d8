"""Valid rules and the exact AST each must give; the canonical text is a fixed point."""

from __future__ import annotations

import pytest

from grammar import ast as a
from grammar import format_rule, parse
from tests.grammar.builders import same, typed
from tests.grammar.valid_rules import VALID


def test_the_table_is_large_and_has_no_duplicates():
    texts = [t for t, _ in VALID]
    assert len(texts) >= 100
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize(("rule", "expected"), VALID, ids=[t for t, _ in VALID])
def test_a_valid_rule_gives_its_ast(rule, expected):
    got = parse(rule)
    assert got == expected
    assert typed(got) == typed(expected)


@pytest.mark.parametrize(("rule", "expected"), VALID, ids=[t for t, _ in VALID])
def test_the_canonical_text_is_a_fixed_point(rule, expected):
    canonical = format_rule(parse(rule))
    assert same(parse(canonical), expected)
    assert format_rule(parse(canonical)) == canonical


CANONICAL = [
    (
        'Opened Email IN THE LAST 7 days and country = "DE"',
        'opened email within 7 days and country is "DE"',
    ),
    ("purchased less than 1 days ago", "purchased within 1 day"),
    ("never purchased", "has never purchased"),
    ("purchased exactly 0 times within 2 weeks", "has never purchased within 2 weeks"),
    ("purchased at least 1 times", "purchased"),
    ("purchased exactly 1 times", "purchased exactly 1 time"),
    ("purchased within 30 days at least 2 times", "purchased at least 2 times within 30 days"),
    ("purchased less than 3 times", "purchased fewer than 3 times"),
    ('performed "email_opened" where campaign is "x"', 'opened email "x"'),
    (
        'submitted form "a" where (x > 1 and y < 2)',
        'submitted form "a" where (x > 1 and y < 2)',
    ),
    ("x != 'it\\'s'", 'x is not "it\'s"'),
    (r'x is "a\"b\\c"', r'x is "a\"b\\c"'),
    ("x > 1.50", "x > 1.5"),
    ("x after 2026-01-01T00:00:00Z", "x after 2026-01-01"),
    ("x after 2026-01-01T11:00:00.250+02:00", "x after 2026-01-01T09:00:00.250Z"),
    ("last purchased less than 7 days ago", "last purchased within 7 days"),
    ("a is 1 and (b is 2 or c is 3)", "a is 1 and (b is 2 or c is 3)"),
    ("(a is 1 and b is 2) or c is 3", "a is 1 and b is 2 or c is 3"),
    ("NOT (a is 1)", "not a is 1"),
    ("in segment engaged", 'in segment "engaged"'),
    ("city is not known", "city is unknown"),
    ("purchased where (amount > 5)", "purchased where amount > 5"),
]


@pytest.mark.parametrize(("rule", "canonical"), CANONICAL, ids=[t for t, _ in CANONICAL])
def test_the_canonical_text(rule, canonical):
    assert format_rule(parse(rule)) == canonical


def test_nodes_carry_their_positions():
    rule = parse('country is "DE" and\n  purchased within 7 days')
    assert isinstance(rule, a.And)
    first, second = rule.items
    assert first.span == a.Span(1, 1, 1, 16)
    assert second.span == a.Span(2, 3, 2, 26)
    assert isinstance(second, a.EventCount)
    assert second.event.span == a.Span(2, 3, 2, 12)
    assert second.window is not None and second.window.span == a.Span(2, 20, 2, 26)
    assert rule.span == a.Span(1, 1, 2, 26)


def test_helpers_read_the_rule():
    from grammar import contact_properties, event_types, longest_window, segment_refs

    rule = parse(
        'country is "DE" and (opened email within 2 weeks or last activity within 3 days) '
        'and in segment "vip"'
    )
    assert event_types(rule) == {"email_opened", None}
    assert contact_properties(rule) == {"country"}
    assert segment_refs(rule) == {"vip"}
    assert longest_window(rule) == 14 * 86_400_000
