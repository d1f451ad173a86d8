"""The typed AST of a segment rule: frozen dataclasses, compared by meaning.

Every node carries its source position in ``span``, which takes no part in equality,
so ``parse(format(node)) == node`` holds although the canonical text moves things.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

MS_PER_UNIT = {
    "seconds": 1_000,
    "minutes": 60_000,
    "hours": 3_600_000,
    "days": 86_400_000,
    "weeks": 7 * 86_400_000,
}


@dataclass(frozen=True)
class Span:
    """Where a node was written: 1-based line and column of its start and end."""

    line: int
    column: int
    end_line: int
    end_column: int


class Unit(Enum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"

    @property
    def ms(self) -> int:
        """Length of one unit in milliseconds."""
        return MS_PER_UNIT[self.value]


@dataclass(frozen=True)
class Duration:
    """`7 days`: an amount of a unit."""

    amount: int
    unit: Unit
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def ms(self) -> int:
        """The duration in milliseconds."""
        return self.amount * self.unit.ms


@dataclass(frozen=True)
class DateValue:
    """A date or instant literal (`2026-01-01`, `2026-01-01T09:00:00Z`), as UTC milliseconds."""

    ms: int
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# A literal in a rule. bool is listed before int on purpose: True is an int in Python,
# and the engine must not compare `true` with 1.
Value = str | bool | int | float | DateValue


class CompareOp(Enum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


class TextOp(Enum):
    CONTAINS = "contains"
    STARTS_WITH = "starts with"
    ENDS_WITH = "ends with"


class DateOp(Enum):
    BEFORE = "before"
    AFTER = "after"


class AgoOp(Enum):
    """`more than N units ago` (at or before t - N) and `less than N units ago` (in (t - N, t])."""

    MORE_THAN = "more than"
    LESS_THAN = "less than"


class CountOp(Enum):
    AT_LEAST = "at least"
    AT_MOST = "at most"
    EXACTLY = "exactly"
    MORE_THAN = "more than"
    FEWER_THAN = "fewer than"


class AggregateFunc(Enum):
    TOTAL = "total"
    AVERAGE = "average"
    MINIMUM = "minimum"
    MAXIMUM = "maximum"


class Which(Enum):
    FIRST = "first"
    LAST = "last"


class RecencyOp(Enum):
    """`within N units` (the same as `less than N units ago`) or `more than N units ago`."""

    WITHIN = "within"
    MORE_THAN_AGO = "more than ago"


# ---- conditions on one property (of the contact, or of an event inside `where`) ----


@dataclass(frozen=True)
class Compare:
    """`lead_score >= 50`, `country is "DE"`, `device_type is not "mobile"`."""

    prop: str
    op: CompareOp
    value: Value
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Between:
    """`age between 18 and 34`, both bounds inclusive."""

    prop: str
    low: int | float | DateValue
    high: int | float | DateValue
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class InList:
    """`lifecycle_stage in ("lead", "mql")`; `negated` for `not in (...)`."""

    prop: str
    values: tuple[Value, ...]
    negated: bool = False
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class TextMatch:
    """`email ends with "@acme.com"`, `url contains "/pricing"` (case-insensitive)."""

    prop: str
    op: TextOp
    value: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Known:
    """`city is known` (known=True) or `city is unknown` (known=False)."""

    prop: str
    known: bool
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class DateCompare:
    """`signed_up_at after 2026-01-01`."""

    prop: str
    op: DateOp
    value: DateValue
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Ago:
    """`signed_up_at more than 30 days ago`: the property read as an instant, against t - N."""

    prop: str
    op: AgoOp
    duration: Duration
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


PropertyCondition = Compare | Between | InList | TextMatch | Known | DateCompare | Ago

# ---- conditions on a contact's events ----


@dataclass(frozen=True)
class EventSelector:
    """Which events a clause reads: a type (None means any event, `activity`) and a filter.

    The shorthand `submitted form "demo-request"` is stored as its expansion, a
    filter `form is "demo-request"`, so the two spellings are the same AST.
    """

    type: str | None
    filter: Condition | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Count:
    """How many events must match; a bare clause is `at least 1`, `never` is `exactly 0`."""

    op: CountOp
    n: int
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


AT_LEAST_ONCE = Count(CountOp.AT_LEAST, 1)


@dataclass(frozen=True)
class EventCount:
    """`opened email within 7 days`, `visited page ... at least 3 times`, `has never purchased`."""

    event: EventSelector
    count: Count = AT_LEAST_ONCE
    window: Duration | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Aggregate:
    """`total amount of purchased within 90 days >= 500`."""

    func: AggregateFunc
    prop: str
    event: EventSelector
    window: Duration | None
    op: CompareOp
    value: int | float
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Recency:
    """`last purchased more than 30 days ago`, `first purchased within 7 days`."""

    which: Which
    event: EventSelector
    op: RecencyOp
    duration: Duration
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class InSegment:
    """`in segment "engaged"`: the name or id as written; `not in segment` is Not(InSegment)."""

    segment: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# ---- logic ----


@dataclass(frozen=True)
class Not:
    item: Condition
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class And:
    """Two or more conditions that must all hold; a chain `a and b and c` is one And."""

    items: tuple[Condition, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Or:
    """Two or more conditions of which one must hold."""

    items: tuple[Condition, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


Condition = (
    Compare
    | Between
    | InList
    | TextMatch
    | Known
    | DateCompare
    | Ago
    | EventCount
    | Aggregate
    | Recency
    | InSegment
    | Not
    | And
    | Or
)

PROPERTY_CONDITIONS = (Compare, Between, InList, TextMatch, Known, DateCompare, Ago)
EVENT_CONDITIONS = (EventCount, Aggregate, Recency)


def walk(node: Condition) -> Iterator[Condition]:
    """Every condition in the tree, parents before children (event filters not entered)."""
    yield node
    if isinstance(node, Not):
        yield from walk(node.item)
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from walk(item)


def renaming_segments(node: Condition, names: Mapping[str, str]) -> Condition:
    """The rule with each `in segment` reference written as `names` maps it (if it does)."""
    if isinstance(node, InSegment):
        return InSegment(names.get(node.segment, node.segment), span=node.span)
    if isinstance(node, Not):
        return Not(renaming_segments(node.item, names), span=node.span)
    if isinstance(node, And | Or):
        items = tuple(renaming_segments(i, names) for i in node.items)
        return type(node)(items, span=node.span)
    return node


def event_selectors(node: Condition) -> Iterator[EventSelector]:
    """The event selectors a rule reads, in order of appearance."""
    for n in walk(node):
        if isinstance(n, EVENT_CONDITIONS):
            yield n.event


def event_types(node: Condition) -> frozenset[str | None]:
    """The event types a rule reads; None stands for `activity` (any event)."""
    return frozenset(sel.type for sel in event_selectors(node))


def contact_properties(node: Condition) -> frozenset[str]:
    """The contact properties a rule reads (not the event properties inside `where`)."""
    return frozenset(n.prop for n in walk(node) if isinstance(n, PROPERTY_CONDITIONS))


def segment_refs(node: Condition) -> frozenset[str]:
    """The segment names or ids a rule refers to, as written."""
    return frozenset(n.segment for n in walk(node) if isinstance(n, InSegment))


def longest_window(node: Condition) -> int | None:
    """The longest duration in the rule in milliseconds (windows, recency, `ago`), or None."""
    spans = [
        d.ms
        for n in walk(node)
        for d in (
            getattr(n, "window", None),
            getattr(n, "duration", None),
        )
        if d is not None
    ]
    return max(spans, default=None)
