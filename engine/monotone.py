"""Which way an event can move a rule: only towards true, only towards false, or either.

If every new event of a contact can only make a rule truer and the contact is already a
member (and no deadline falls due meanwhile), evaluating it again cannot change anything:
membership stays, and the old deadline stays a valid lower bound. The projector uses this
to skip most evaluations of engaged contacts.
"""

from __future__ import annotations

from collections.abc import Mapping

from grammar import ast as a

UP, DOWN, EITHER, UNREAD = 1, -1, 0, 2
ANY_TYPE = None

_COUNT_DIRECTION = {
    a.CountOp.AT_LEAST: UP,
    a.CountOp.MORE_THAN: UP,
    a.CountOp.AT_MOST: DOWN,
    a.CountOp.FEWER_THAN: DOWN,
}


def _leaf_direction(node: a.Condition) -> int:
    """How one more event of the node's selector moves the node's value."""
    if isinstance(node, a.EventCount):
        if node.count.op is a.CountOp.EXACTLY:
            return DOWN if node.count.n == 0 else EITHER
        return _COUNT_DIRECTION[node.count.op]
    if isinstance(node, a.Recency):
        if node.which is a.Which.LAST and node.op is a.RecencyOp.WITHIN:
            return UP
        if node.which is a.Which.FIRST and node.op is a.RecencyOp.MORE_THAN_AGO:
            return UP  # another event can only make the first one earlier
        return EITHER
    return EITHER  # aggregates: amounts may be anything


def directions(rule: a.Condition) -> Mapping[str | None, int]:
    """Per event type the rule reads (None: a selector of any type), the way it can move it."""
    found: dict[str | None, int] = {}

    def visit(node: a.Condition, polarity: int) -> None:
        if isinstance(node, a.Not):
            visit(node.item, -polarity)
        elif isinstance(node, a.And | a.Or):
            for item in node.items:
                visit(item, polarity)
        elif isinstance(node, a.EVENT_CONDITIONS):
            way = _leaf_direction(node) * polarity
            key = node.event.type
            found[key] = way if found.get(key, way) == way else EITHER

    visit(rule, UP)
    return found


def direction_of(found: Mapping[str | None, int], event_type: str) -> int:
    """The way an event of a type can move the rule: UP, DOWN, EITHER, or UNREAD."""
    ways = {found[k] for k in (event_type, ANY_TYPE) if k in found}
    if not ways:
        return UNREAD
    return ways.pop() if len(ways) == 1 else EITHER
