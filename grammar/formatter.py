"""AST to canonical text: one spelling per meaning, which `parse` reads back to the same AST."""

from __future__ import annotations

import re
from collections.abc import Callable

from grammar import ast as a
from grammar.literals import format_date, format_number, quote
from grammar.vocabulary import is_verb, verb_for_type

_COMPARE = {
    a.CompareOp.EQ: "is",
    a.CompareOp.NE: "is not",
    a.CompareOp.GT: ">",
    a.CompareOp.GE: ">=",
    a.CompareOp.LT: "<",
    a.CompareOp.LE: "<=",
}


_NAME = re.compile(r"(?!\d)\w+")  # segment.lark's NAME
Reserved = Callable[[str], bool]


def _keywords(*words: str, verbs: bool = False) -> Reserved:
    """Which words the parser takes as keywords (or verbs) where a property name may stand;
    it matches them as Python's re does with IGNORECASE (a dotless i matches an i)."""
    pattern = re.compile("|".join(words), re.IGNORECASE)
    return lambda name: pattern.fullmatch(name) is not None or (verbs and is_verb(name))


# Where a condition starts, and where a filter's condition starts.
_IN_RULE = _keywords(
    *("not", "in", "has", "never", "last", "first", "performed", "activity"),
    *("total", "average", "minimum", "maximum"),
    verbs=True,
)
_IN_FILTER = _keywords("not")


def _after_aggregate(name: str) -> bool:
    return False  # after total, average, ...: any word is the property's name


def format_rule(node: a.Condition) -> str:
    """The canonical text of a rule: `parse(format_rule(node)) == node` for a valid rule."""
    return _condition(node, None, _IN_RULE)


def _prop(name: str, reserved: Reserved) -> str:
    """A property's name: bare if it is a word the parser reads as a name there, else quoted."""
    if _NAME.fullmatch(name) and not reserved(name):
        return name
    return f"property {quote(name)}"


def _condition(node: a.Condition, parent: type | None, reserved: Reserved) -> str:
    # An And inside an And (and an Or inside an Or) keeps its parentheses, so that the
    # shape of the tree survives the trip through text.
    if isinstance(node, a.Or):
        text = " or ".join(_condition(item, a.Or, reserved) for item in node.items)
        return f"({text})" if parent is not None else text
    if isinstance(node, a.And):
        text = " and ".join(_condition(item, a.And, reserved) for item in node.items)
        return f"({text})" if parent in (a.And, a.Not) else text
    if isinstance(node, a.Not):
        return f"not {_condition(node.item, a.Not, reserved)}"
    return _leaf(node, reserved)


def _leaf(node: a.Condition, reserved: Reserved) -> str:
    if isinstance(node, a.PropertyCondition):
        return f"{_prop(node.prop, reserved)} {_property_test(node)}"
    if isinstance(node, a.EventCount):
        return _event_count(node)
    if isinstance(node, a.Aggregate):
        window = f" within {_duration(node.window)}" if node.window else ""
        return (
            f"{node.func.value} {_prop(node.prop, _after_aggregate)} of {_selector(node.event)}"
            f"{window} {_COMPARE[node.op]} {format_value(node.value)}"
        )
    if isinstance(node, a.Recency):
        if node.op is a.RecencyOp.WITHIN:
            when = f"within {_duration(node.duration)}"
        else:
            when = f"more than {_duration(node.duration)} ago"
        return f"{node.which.value} {_selector(node.event)} {when}"
    if isinstance(node, a.InSegment):
        return f"in segment {quote(node.segment)}"
    raise TypeError(f"not a condition: {node!r}")


def _property_test(node: a.Condition) -> str:
    """What a condition on a property says of it, after its name."""
    if isinstance(node, a.Compare):
        return f"{_COMPARE[node.op]} {format_value(node.value)}"
    if isinstance(node, a.Between):
        return f"between {format_value(node.low)} and {format_value(node.high)}"
    if isinstance(node, a.InList):
        values = ", ".join(format_value(v) for v in node.values)
        return f"{'not in' if node.negated else 'in'} ({values})"
    if isinstance(node, a.TextMatch | a.DateCompare):
        return f"{node.op.value} {format_value(node.value)}"
    if isinstance(node, a.Known):
        return f"is {'known' if node.known else 'unknown'}"
    assert isinstance(node, a.Ago)
    return f"{node.op.value} {_duration(node.duration)} ago"


def _event_count(node: a.EventCount) -> str:
    window = f" within {_duration(node.window)}" if node.window else ""
    count = node.count
    if count.op is a.CountOp.EXACTLY and count.n == 0:
        return f"has never {_selector(node.event)}{window}"
    times = ""
    if count != a.AT_LEAST_ONCE:
        times = f" {count.op.value} {count.n} {'time' if count.n == 1 else 'times'}"
    return f"{_selector(node.event)}{times}{window}"


def _selector(selector: a.EventSelector) -> str:
    rest = selector.filter
    if selector.type is None:
        head = "activity"
    else:
        verb = verb_for_type(selector.type)
        if verb is None:
            head = f"performed {quote(selector.type)}"
        else:
            head = verb.phrase
            if verb.shorthand is not None:
                shorthand, rest = _split_shorthand(rest, verb.shorthand)
                if shorthand is not None:
                    head += f" {quote(shorthand)}"
    if rest is None:
        return head
    if isinstance(rest, a.And | a.Or | a.Not):
        return f"{head} where ({_condition(rest, None, _IN_FILTER)})"
    return f"{head} where {_leaf(rest, _IN_FILTER)}"


def _split_shorthand(
    condition: a.Condition | None, prop: str
) -> tuple[str | None, a.Condition | None]:
    """`"welcome"` and what is left of a filter that starts with `campaign is "welcome"`.

    The parser reads `opened email "x" where f` as And(campaign is "x", f), so only a
    filter of that exact shape is written back with the shorthand.
    """

    def is_shorthand(c: a.Condition) -> bool:
        return (
            isinstance(c, a.Compare)
            and c.prop == prop
            and c.op is a.CompareOp.EQ
            and isinstance(c.value, str)
        )

    if condition is not None and is_shorthand(condition):
        assert isinstance(condition, a.Compare) and isinstance(condition.value, str)
        return condition.value, None
    if isinstance(condition, a.And) and len(condition.items) == 2:
        first = condition.items[0]
        if is_shorthand(first):
            assert isinstance(first, a.Compare) and isinstance(first.value, str)
            return first.value, condition.items[1]
    return None, condition


def _duration(duration: a.Duration) -> str:
    unit = duration.unit.value
    return f"{duration.amount} {unit[:-1] if duration.amount == 1 else unit}"


def format_value(value: object) -> str:
    """A value of a rule as the canonical text writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, a.DateValue):
        return format_date(value.ms)
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"not a value: {value!r}")
