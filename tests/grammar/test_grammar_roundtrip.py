"""Canonical text and JSON give back the same AST; the JSON form and its refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from grammar import ast as a
from grammar import format_rule, from_json, parse, to_json
from tests.grammar.builders import AND, cmp, date, dur, ev, same, sel, typed
from tests.grammar.strategies import rules
from tests.grammar.valid_rules import VALID

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rules)
def test_the_canonical_text_parses_back_to_the_same_ast(rule):
    text = format_rule(rule)
    assert same(parse(text), rule), text


@SETTINGS
@given(rules)
def test_json_gives_back_the_same_ast(rule):
    data = json.loads(json.dumps(to_json(rule)))
    assert same(from_json(data), rule)


@pytest.mark.parametrize("rule", [t for t, _ in VALID], ids=[t for t, _ in VALID])
def test_json_of_a_parsed_rule_gives_it_back_without_spans(rule):
    parsed = parse(rule)
    data = json.loads(json.dumps(to_json(parsed)))
    back = from_json(data)
    assert typed(back) == typed(parsed)
    assert back.span is None


def test_the_json_form():
    rule = parse('opened email "welcome" within 7 days and signed_up_at after 2026-01-01')
    assert to_json(rule) == {
        "kind": "and",
        "items": [
            {
                "kind": "event_count",
                "event": {
                    "kind": "event",
                    "type": "email_opened",
                    "filter": {
                        "kind": "compare",
                        "prop": "campaign",
                        "op": "=",
                        "value": "welcome",
                        "span": {"line": 1, "column": 14, "end_line": 1, "end_column": 23},
                    },
                    "span": {"line": 1, "column": 1, "end_line": 1, "end_column": 23},
                },
                "count": {"kind": "count", "op": "at least", "n": 1},
                "window": {
                    "kind": "duration",
                    "amount": 7,
                    "unit": "days",
                    "span": {"line": 1, "column": 31, "end_line": 1, "end_column": 37},
                },
                "span": {"line": 1, "column": 1, "end_line": 1, "end_column": 37},
            },
            {
                "kind": "date_compare",
                "prop": "signed_up_at",
                "op": "after",
                "value": {
                    "kind": "date",
                    "value": "2026-01-01T00:00:00.000Z",
                    "span": {"line": 1, "column": 61, "end_line": 1, "end_column": 71},
                },
                "span": {"line": 1, "column": 42, "end_line": 1, "end_column": 71},
            },
        ],
        "span": {"line": 1, "column": 1, "end_line": 1, "end_column": 71},
    }


def test_json_without_spans_for_a_built_ast():
    rule = a.Aggregate(
        a.AggregateFunc.TOTAL, "amount", sel("purchased"), dur(3), a.CompareOp.GE, 1.5
    )
    assert to_json(rule) == {
        "kind": "aggregate",
        "func": "total",
        "prop": "amount",
        "event": {"kind": "event", "type": "purchased", "filter": None},
        "window": {"kind": "duration", "amount": 3, "unit": "days"},
        "op": ">=",
        "value": 1.5,
    }


GOOD = to_json(AND(ev("purchased", window=dur(7)), cmp("x", "EQ", date(2026, 1, 1))))


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


MALFORMED = [
    ("not an object", []),
    ("no kind", {"items": []}),
    ("unknown kind", {"kind": "xor", "items": []}),
    ("one item", {"kind": "and", "items": [GOOD["items"][0]]}),
    ("missing field", {"kind": "known", "prop": "x"}),
    ("unknown field", {"kind": "known", "prop": "x", "known": True, "extra": 1}),
    ("bad enum", {"kind": "compare", "prop": "x", "op": "~", "value": 1}),
    ("bad prop", {"kind": "known", "prop": 3, "known": True}),
    ("prop with a control character", {"kind": "known", "prop": "first\nname", "known": True}),
    ("empty prop", {"kind": "known", "prop": "", "known": True}),
    ("bool as bool", {"kind": "known", "prop": "x", "known": "yes"}),
    ("list value", {"kind": "compare", "prop": "x", "op": "=", "value": [1]}),
    (
        "bad date",
        {"kind": "compare", "prop": "x", "op": "=", "value": {"kind": "date", "value": "x"}},
    ),
    ("text date", {"kind": "date_compare", "prop": "x", "op": "after", "value": "2026-01-01"}),
    ("empty list", {"kind": "in_list", "prop": "x", "values": [], "negated": False}),
    ("text bound", {"kind": "between", "prop": "x", "low": "a", "high": 2}),
    (
        "float amount",
        {
            "kind": "ago",
            "prop": "x",
            "op": "more than",
            "duration": {"kind": "duration", "amount": 1.5, "unit": "days"},
        },
    ),
    (
        "bool count",
        {**GOOD["items"][0], "count": {"kind": "count", "op": "at least", "n": True}},
    ),
    ("no window", _without(GOOD["items"][0], "window")),
    ("nan", {"kind": "compare", "prop": "x", "op": ">", "value": float("nan")}),
    (
        "text aggregate",
        {**to_json(parse("total amount of purchased > 1")), "value": "1"},
    ),
]


@pytest.mark.parametrize(("why", "data"), MALFORMED, ids=[w for w, _ in MALFORMED])
def test_malformed_json_is_a_value_error(why, data):
    with pytest.raises(ValueError):
        from_json(data)


def test_a_span_in_json_is_ignored():
    data = to_json(parse("x is 1"))
    data["span"] = {"line": 9, "column": 9, "end_line": 9, "end_column": 9}
    assert from_json(data) == cmp("x", "EQ", 1)
