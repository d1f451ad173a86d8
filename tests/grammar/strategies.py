"""Hypothesis strategies for valid rule ASTs: every node kind, within the checks and limits."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st
from lark.lexer import PatternStr

from grammar import ast as a
from grammar import format_rule, vocabulary
from grammar.checks import MAX_CLAUSES, MAX_DURATION_DAYS, MAX_NESTING, MAX_RULE_LENGTH
from grammar.parser import lark_parser

DAY_MS = 86_400_000


def _reserved() -> frozenset[str]:
    """Words that may not be property names at the start of a condition (and some more)."""
    keywords = {
        t.pattern.value.lower()
        for t in lark_parser().terminals
        if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()
    }
    units = {u.value for u in a.Unit} | {u.value[:-1] for u in a.Unit}
    verbs = {word for v in vocabulary.VERBS for word in v.phrase.split()}
    return frozenset(keywords | units | verbs)


RESERVED = _reserved()


def _ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000


# Letters of other scripts too (país, größe, город), but not the few that case-fold onto an
# ASCII keyword's letters (the dotless i, U+0131, matches i: a property named with it and s
# would read as `is`), nor the Kelvin and Angstrom signs.
_LETTERS = st.characters(
    whitelist_categories=("Ll", "Lu", "Lo"),
    max_codepoint=0x9FFF,
    blacklist_characters="\u0131\u0130\u017f\u212a\u212b",
)
words = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True),
    st.text(_LETTERS, min_size=1, max_size=8),
).filter(lambda n: n.lower() not in RESERVED and n.casefold() not in RESERVED)
# Property names as producers send them: words, keywords and verbs (written `property "in"`
# where the parser would read a keyword), and names that are no word at all.
names = st.one_of(
    words,
    st.sampled_from(sorted(RESERVED | {"property", "Property", "\u0131n", "\u0131s", "In", "NOT"})),
    st.sampled_from(["lead score", "lead-score", "utm.source", "$email", "it's", "1st", "é"]),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"\\'),
        min_size=1,
        max_size=10,
    ),
)
texts = st.text(max_size=12)
numbers = st.one_of(
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 0.5, -0.0, 1e-7, 1e22]),
)
dates = st.one_of(
    st.integers(_ms(1900), _ms(2200)),
    st.integers(_ms(1900) // DAY_MS, _ms(2200) // DAY_MS).map(lambda d: d * DAY_MS),
).map(a.DateValue)
values = st.one_of(texts, numbers, st.booleans(), dates)


@st.composite
def durations(draw: st.DrawFn) -> a.Duration:
    unit = draw(st.sampled_from(list(a.Unit)))
    longest = min(100_000, MAX_DURATION_DAYS * DAY_MS // unit.ms)
    return a.Duration(draw(st.integers(1, longest)), unit)


@st.composite
def betweens(draw: st.DrawFn) -> a.Between:
    if draw(st.booleans()):
        low, high = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
    else:
        low, high = sorted(draw(st.lists(dates, min_size=2, max_size=2)), key=lambda d: d.ms)
    return a.Between(draw(names), low, high)


ORDERING = [a.CompareOp.GT, a.CompareOp.GE, a.CompareOp.LT, a.CompareOp.LE]

property_filters = st.one_of(
    st.builds(a.Compare, names, st.sampled_from([a.CompareOp.EQ, a.CompareOp.NE]), values),
    st.builds(a.Compare, names, st.sampled_from(ORDERING), st.one_of(numbers, dates)),
    betweens(),
    st.builds(a.InList, names, st.lists(values, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(a.TextMatch, names, st.sampled_from(list(a.TextOp)), texts),
    st.builds(a.Known, names, st.booleans()),
    st.builds(a.DateCompare, names, st.sampled_from(list(a.DateOp)), dates),
)
property_conditions = st.one_of(
    property_filters,
    st.builds(a.Ago, names, st.sampled_from(list(a.AgoOp)), durations()),
)


def logic(leaves: st.SearchStrategy[a.Condition], max_leaves: int) -> st.SearchStrategy:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(a.Not, inner),
            st.builds(a.And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
            st.builds(a.Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        ),
        max_leaves=max_leaves,
    )


filters = logic(property_filters, 4)
event_types = st.one_of(
    st.sampled_from(sorted({v.event_type for v in vocabulary.VERBS})),
    st.from_regex(vocabulary.EVENT_TYPE, fullmatch=True),  # any type an event may have
)


@st.composite
def selectors(draw: st.DrawFn, any_event: bool = False) -> a.EventSelector:
    kind = draw(st.none() | event_types) if any_event else draw(event_types)
    where = draw(st.none() | filters)
    verb = vocabulary.verb_for_type(kind) if kind is not None else None
    if verb is not None and verb.shorthand and draw(st.booleans()):
        shorthand = a.Compare(verb.shorthand, a.CompareOp.EQ, draw(texts))
        where = shorthand if where is None else a.And((shorthand, where))
    return a.EventSelector(kind, where)


counts = st.one_of(
    st.builds(a.Count, st.just(a.CountOp.AT_LEAST), st.integers(1, 10**6)),
    st.builds(a.Count, st.just(a.CountOp.FEWER_THAN), st.integers(1, 10**6)),
    st.builds(
        a.Count,
        st.sampled_from([a.CountOp.AT_MOST, a.CountOp.EXACTLY, a.CountOp.MORE_THAN]),
        st.integers(0, 10**6),
    ),
)
event_conditions = st.one_of(
    st.builds(a.EventCount, selectors(), counts, st.none() | durations()),
    st.builds(
        a.Aggregate,
        st.sampled_from(list(a.AggregateFunc)),
        names,
        selectors(),
        st.none() | durations(),
        st.sampled_from(list(a.CompareOp)),
        numbers,
    ),
    st.builds(
        a.Recency,
        st.sampled_from(list(a.Which)),
        selectors(any_event=True),
        st.sampled_from(list(a.RecencyOp)),
        durations(),
    ),
)
segments = st.builds(a.InSegment, st.text(min_size=1, max_size=12).filter(str.strip))


def nesting(node: a.Condition) -> int:
    """An upper bound of the parentheses and `not`s the canonical text nests."""
    if isinstance(node, a.Not):
        return 1 + nesting(node.item)
    if isinstance(node, a.And | a.Or):
        return 1 + max(nesting(item) for item in node.items)
    if isinstance(node, a.EventCount | a.Aggregate | a.Recency) and node.event.filter:
        return 1 + nesting(node.event.filter)
    return 0


def clauses(node: a.Condition) -> int:
    """Conditions that are not logic, those inside `where` included."""
    if isinstance(node, a.Not):
        return clauses(node.item)
    if isinstance(node, a.And | a.Or):
        return sum(clauses(item) for item in node.items)
    if isinstance(node, a.EventCount | a.Aggregate | a.Recency) and node.event.filter:
        return 1 + clauses(node.event.filter)
    return 1


def within_limits(node: a.Condition) -> bool:
    return (
        nesting(node) <= MAX_NESTING
        and clauses(node) <= MAX_CLAUSES
        and len(format_rule(node)) <= MAX_RULE_LENGTH
    )


rules = logic(st.one_of(property_conditions, event_conditions, segments), 10).filter(within_limits)
