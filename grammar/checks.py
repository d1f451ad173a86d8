"""Checks on a rule that parsed: types that cannot work, counts and windows that make no
sense, and the limits that keep a rule cheap to evaluate. Each problem points at its part."""

from __future__ import annotations

from collections.abc import Iterator

from lark import Tree

from grammar import ast as a
from grammar.errors import Problem
from grammar.formatter import format_rule, format_value
from grammar.literals import DAY_MS

MAX_RULE_LENGTH = 4_000
MAX_NESTING = 10
MAX_CLAUSES = 50
MAX_DURATION_DAYS = 3_650

_ORDERING = {a.CompareOp.GT, a.CompareOp.GE, a.CompareOp.LT, a.CompareOp.LE}
_SYMBOL = {
    a.CompareOp.EQ: "is",
    a.CompareOp.NE: "is not",
    a.CompareOp.GT: ">",
    a.CompareOp.GE: ">=",
    a.CompareOp.LT: "<",
    a.CompareOp.LE: "<=",
}
_NESTING_NODES = {"group", "not_"}


def length_problems(text: str) -> list[Problem]:
    """The rule is too long to be read at all."""
    if len(text) <= MAX_RULE_LENGTH:
        return []
    before = text[:MAX_RULE_LENGTH]
    line = before.count("\n") + 1
    column = MAX_RULE_LENGTH - (before.rfind("\n") + 1) + 1
    return [
        Problem(
            line,
            column,
            f"the rule is {len(text):,} characters long; the limit is {MAX_RULE_LENGTH:,}",
            hint='move parts into their own segments and refer to them with in segment "..."',
        )
    ]


def nesting_problems(tree: Tree) -> list[Problem]:
    """Parentheses and `not` nested deeper than MAX_NESTING, checked on the parse tree
    because parentheses leave no node in the AST (and before building it, so a deep tree
    never reaches the recursive Transformer)."""
    problems = []
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in _NESTING_NODES:
            depth += 1
            if depth > MAX_NESTING:
                problems.append(
                    Problem(
                        node.meta.line,
                        node.meta.column,
                        f"this part is nested {depth} levels deep in parentheses and `not`; "
                        f"the limit is {MAX_NESTING}",
                        hint="simplify it, or move part of it into a segment of its own",
                        end_line=node.meta.end_line,
                        end_column=node.meta.end_column,
                    )
                )
                continue
        stack.extend((child, depth) for child in reversed(node.children) if isinstance(child, Tree))
    return sorted(problems, key=lambda p: (p.line, p.column))


def check(rule: a.Condition) -> list[Problem]:
    """Every problem of meaning in a parsed rule, in order of position."""
    problems: list[Problem] = []
    leaves = 0
    for node, in_filter in _conditions(rule):
        if isinstance(node, a.And | a.Or | a.Not):
            continue
        leaves += 1
        if leaves == MAX_CLAUSES + 1:
            total = sum(1 for n, _ in _conditions(rule) if not isinstance(n, a.And | a.Or | a.Not))
            problems.append(
                _at(
                    node,
                    f"the rule has {total} conditions; the limit is {MAX_CLAUSES}",
                    'move some into their own segments and refer to them with in segment "..."',
                )
            )
        problems.extend(_node_problems(node, in_filter))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _conditions(rule: a.Condition) -> Iterator[tuple[a.Condition, bool]]:
    """Every condition with whether it sits in an event filter, event filters entered."""
    stack: list[tuple[a.Condition, bool]] = [(rule, False)]
    while stack:
        node, in_filter = stack.pop()
        yield node, in_filter
        children: list[tuple[a.Condition, bool]] = []
        if isinstance(node, a.Not):
            children.append((node.item, in_filter))
        elif isinstance(node, a.And | a.Or):
            children.extend((item, in_filter) for item in node.items)
        elif isinstance(node, a.EventCount | a.Aggregate | a.Recency) and node.event.filter:
            children.append((node.event.filter, True))
        stack.extend(reversed(children))


def _node_problems(node: a.Condition, in_filter: bool) -> Iterator[Problem]:
    if isinstance(node, a.Compare) and node.op in _ORDERING and not _orderable(node.value):
        yield _at(
            node,
            f'"{node.prop} {_SYMBOL[node.op]}" compares numbers or dates, '
            f"not {_describe(node.value)}",
            "use is or is not to compare text" if isinstance(node.value, str) else None,
        )
    elif isinstance(node, a.Between):
        yield from _between_problems(node)
    elif isinstance(node, a.TextMatch) and not isinstance(node.value, str):
        yield _at(
            node,
            f'"{node.prop} {node.op.value}" needs a quoted text, not {_describe(node.value)}',
        )
    elif isinstance(node, a.DateCompare) and not isinstance(node.value, a.DateValue):
        yield _at(
            node,
            f'"{node.prop} {node.op.value}" needs a date such as 2026-01-01, '
            f"not {_describe(node.value)}",
        )
    elif isinstance(node, a.Ago):
        if in_filter:
            yield _at(
                node,
                f'"{node.prop} ... ago" cannot filter events: which events match would '
                "change as time passes",
                "use a window instead: ... within 30 days",
            )
        yield from _duration_problems(node.duration, node)
    elif isinstance(node, a.EventCount):
        yield from _selector_problems(node.event)
        yield from _count_problems(node.count, node)
        if node.window is not None:
            yield from _duration_problems(node.window, node)
    elif isinstance(node, a.Aggregate):
        yield from _selector_problems(node.event)
        if node.window is not None:
            yield from _duration_problems(node.window, node)
        if not _is_number(node.value):
            yield _at(
                node,
                f"{node.func.value} {node.prop} is compared with a number, "
                f"not {_describe(node.value)}",
            )
    elif isinstance(node, a.Recency):
        yield from _duration_problems(node.duration, node)


def _between_problems(node: a.Between) -> Iterator[Problem]:
    low, high = node.low, node.high
    for bound in (low, high):
        if not _orderable(bound):
            yield _at(
                node,
                f'"{node.prop} between" needs numbers or dates, not {_describe(bound)}',
            )
            return
    if isinstance(low, a.DateValue) != isinstance(high, a.DateValue):
        yield _at(node, f'"{node.prop} between" needs two numbers or two dates, not one of each')
        return
    low_key = low.ms if isinstance(low, a.DateValue) else low
    high_key = high.ms if isinstance(high, a.DateValue) else high
    if low_key > high_key:
        yield _at(
            node,
            "the bounds of between are reversed, so nothing is between them",
            f"write {format_rule(a.Between(node.prop, high, low))}",
        )


def _selector_problems(selector: a.EventSelector) -> Iterator[Problem]:
    if selector.type is None:
        yield _at(
            selector,
            "`activity` (any event) can only be used in `last activity` or `first activity`",
            'name the event, such as purchased or performed "trial_started"',
        )


def _count_problems(count: a.Count, owner: a.Condition) -> Iterator[Problem]:
    where = count if count.span is not None else owner
    words = f"{count.op.value} {count.n} times"
    if count.n < 0:
        yield _at(where, f'"{words}": a number of times cannot be negative')
    elif count.op is a.CountOp.AT_LEAST and count.n == 0:
        yield _at(where, f'"{words}" is always true', "remove it, or count at least 1 time")
    elif count.op is a.CountOp.FEWER_THAN and count.n == 0:
        yield _at(where, f'"{words}" is never true', "to ask for none, write has never ...")


def _duration_problems(duration: a.Duration, owner: a.Condition) -> Iterator[Problem]:
    where = duration if duration.span is not None else owner
    words = f"{duration.amount} {duration.unit.value}"
    if duration.amount < 1:
        yield _at(where, f'"{words}" is not a length of time', "use at least 1")
    elif duration.ms > MAX_DURATION_DAYS * DAY_MS:
        yield _at(
            where,
            f'"{words}" is longer than the limit of {MAX_DURATION_DAYS} days (about 10 years)',
        )


def _orderable(value: object) -> bool:
    return _is_number(value) or isinstance(value, a.DateValue)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return format_value(value)
    if isinstance(value, str):
        return f"the text {format_value(value)}"
    if isinstance(value, a.DateValue):
        return f"the date {format_value(value)}"
    return f"the number {format_value(value)}"


def _at(node: object, message: str, hint: str | None = None) -> Problem:
    span = getattr(node, "span", None)
    if span is None:
        return Problem(1, 1, message, hint=hint)
    return Problem(
        span.line,
        span.column,
        message,
        hint=hint,
        end_line=span.end_line,
        end_column=span.end_column,
    )
