"""Any property a producer can send can be named in a rule: `property "lead score"` where its
name is not a word, or is a word the parser would take as a keyword there."""

from __future__ import annotations

import pytest

from grammar import RuleError, format_rule, parse
from grammar import ast as a
from tests.grammar.strategies import RESERVED

PURCHASED = a.EventSelector("purchased", None)


def _filtered(condition: a.Condition) -> a.EventCount:
    return a.EventCount(a.EventSelector("purchased", condition), a.AT_LEAST_ONCE, None)


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ('property "lead score" >= 50', a.Compare("lead score", a.CompareOp.GE, 50), None),
        ('PROPERTY "lead-score" is known', a.Known("lead-score", True), 'property "lead-score"'),
        ('property "utm.source" in ("x")', a.InList("utm.source", ("x",)), None),
        (
            'purchased where property "order id" is known',
            _filtered(a.Known("order id", True)),
            None,
        ),
        (
            'total property "order value" of purchased >= 100',
            a.Aggregate(a.AggregateFunc.TOTAL, "order value", PURCHASED, None, a.CompareOp.GE, 100),
            None,
        ),
        # Written quoted though it need not be: the canonical text leaves the quotes out.
        ('property "country" is "DE"', a.Compare("country", a.CompareOp.EQ, "DE"), "country"),
        # A property named property needs no quotes, nor does one named like a keyword where
        # the parser takes no keyword.
        ('property is "x"', a.Compare("property", a.CompareOp.EQ, "x"), None),
        ("Property between 1 and 2", a.Between("Property", 1, 2), None),
        ("total total of purchased > 1", None, None),
        ('segment is "x"', a.Compare("segment", a.CompareOp.EQ, "x"), None),
        ("purchased where total > 3", _filtered(a.Compare("total", a.CompareOp.GT, 3)), None),
        # Where it would be read as a keyword or an event, it is quoted.
        ('property "total" > 1', a.Compare("total", a.CompareOp.GT, 1), None),
        ('property "purchased" is true', a.Compare("purchased", a.CompareOp.EQ, True), None),
        ('property "not" is known', a.Known("not", True), None),
        ('purchased where property "not" > 1', _filtered(a.Compare("not", a.CompareOp.GT, 1)), ""),
        ("property 'it\\'s' is known", a.Known("it's", True), 'property "it\'s"'),
    ],
)
def test_a_property_is_named_bare_or_quoted(text, expected, canonical):
    rule = parse(text)
    if expected is not None:
        assert rule == expected
    written = format_rule(rule)
    assert parse(written) == rule
    assert written.startswith(canonical or text)


def test_every_keyword_and_verb_names_a_property_in_every_place_one_stands():
    names = set()
    for word in RESERVED | {"property", "and", "or"}:
        # Spellings the parser's case-insensitive matching takes for the word itself.
        names |= {word, word.upper(), word.title(), word.replace("i", "\u0131")}
        names |= {word.replace("s", "\u017f"), word.replace("k", "\u212a")}
    names |= {"opened email", "signed up", "a-b", "1st"}
    for name in sorted(names):
        for rule in (
            a.Compare(name, a.CompareOp.EQ, 1),
            a.Not(a.Known(name, True)),
            a.And((a.Known("x", True), a.Known(name, False))),
            _filtered(a.Compare(name, a.CompareOp.GT, 2)),
            _filtered(a.Not(a.Compare(name, a.CompareOp.GT, 2))),
            _filtered(a.Or((a.Known("x", True), a.Known(name, True)))),
            a.Aggregate(a.AggregateFunc.TOTAL, name, PURCHASED, None, a.CompareOp.GE, 1),
        ):
            assert parse(format_rule(rule)) == rule, format_rule(rule)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ('property "" > 1', "1-200 characters", None),
        ('property "' + "x" * 201 + '" > 1', "1-200 characters", None),
        ('property "a\\nb" > 1', "control character", None),
        ('property "say \\"hi\\"" > 1', "cannot name", None),
        ('property "C:\\\\x" > 1', "cannot name", None),
        ('"lead score" >= 50', "cannot start with", 'write property "lead score"'),
        ("lead-score >= 50", 'unexpected character "-"', 'write property "lead-score"'),
        ('purchased where utm.source is "x"', '"."', 'write property "utm.source"'),
        ('"DE"', "cannot start with", 'country is "DE"'),
    ],
)
def test_a_property_no_producer_could_send_or_written_unquoted_is_refused(text, message, hint):
    with pytest.raises(RuleError) as info:
        parse(text)
    problem = info.value.problems[0]
    assert message in problem.message
    if hint is not None:
        assert problem.hint is not None and hint in problem.hint
