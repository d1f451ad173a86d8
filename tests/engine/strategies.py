"""Hypothesis strategies for small contact histories and rules whose instants fall on whole
seconds, so that a brute-force search second by second finds every change."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from engine.history import Event
from grammar import ast as a

BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECOND = 1000
SPAN = 90  # seconds of history


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


instants = st.integers(0, SPAN).map(lambda s: BASE + s * SECOND)

# True and 1 are equal to Python, not in a rule: `country = true` and `country = 1` differ.
country = st.sampled_from(
    ["DE", "de", "FR", "AT", 5, 1, True, False, None, "Zu\u0308rich", "ZÜRICH"]
)
score = st.one_of(
    st.integers(-5, 100), st.floats(0, 100, allow_nan=False), st.just("50"), st.none()
)
signup = st.one_of(instants.map(iso), st.just("not a date"), st.just("2026-01-01"), st.none())

PAYLOADS = {
    "email_opened": st.fixed_dictionaries(
        {}, optional={"campaign": st.sampled_from(["welcome", "Promo", "promo"])}
    ),
    "purchased": st.fixed_dictionaries(
        {},
        optional={
            # Prices in cents, whose binary sums miss the totals written (10.1 + 20.2).
            "amount": st.one_of(
                st.integers(0, 200),
                st.floats(0, 200, allow_nan=False),
                st.sampled_from([10.1, 20.2, 0.7, 0.1, 19.99, 30.01]),
                st.just("12"),
            )
        },
    ),
    "page_viewed": st.fixed_dictionaries(
        # "straße" casefolds to "strasse": the text a filter looks for need not be ASCII
        # where the data is; "zürich" is sent precomposed or with a combining umlaut.
        {},
        optional={
            "url": st.sampled_from(
                ["/pricing", "/blog/x", "/PRICING/plans", "/", "/Strasse-1", "/Zu\u0308rich"]
            )
        },
    ),
    "contact_updated": st.fixed_dictionaries(
        {}, optional={"country": country, "score": score, "signup": signup}
    ),
}
TYPES = sorted(PAYLOADS)


@st.composite
def histories(draw: st.DrawFn, max_events: int = 12) -> list[Event]:
    """A contact's events; positions in order, occurred_at anywhere in the span."""
    kinds = draw(st.lists(st.sampled_from(TYPES), max_size=max_events))
    events = []
    for position, kind in enumerate(kinds, start=1):
        occurred = draw(instants)
        events.append(
            Event(position, f"e{position}", kind, occurred, occurred, draw(PAYLOADS[kind]))
        )
    return events


durations = st.builds(
    a.Duration,
    st.integers(1, 40),
    st.just(a.Unit.SECONDS),
) | st.just(a.Duration(1, a.Unit.MINUTES))


def _selector_for(kind: str | None) -> st.SearchStrategy[a.EventSelector]:
    filters: dict[str | None, list[a.Condition]] = {
        "email_opened": [a.Compare("campaign", a.CompareOp.EQ, "promo")],
        "purchased": [
            a.Compare("amount", a.CompareOp.GT, 50),
            a.Not(a.Compare("amount", a.CompareOp.LT, 100)),
        ],
        "page_viewed": [
            a.TextMatch("url", a.TextOp.CONTAINS, "pricing"),
            a.TextMatch("url", a.TextOp.CONTAINS, "straße"),
            a.TextMatch("url", a.TextOp.ENDS_WITH, "z\u00fcrich"),
            a.Or((a.TextMatch("url", a.TextOp.STARTS_WITH, "/blog"), a.Known("url", False))),
        ],
        None: [],
    }
    return st.builds(a.EventSelector, st.just(kind), st.sampled_from([None, *filters[kind]]))


event_selectors = st.sampled_from(["email_opened", "purchased", "page_viewed"]).flatmap(
    _selector_for
)

counts = st.one_of(
    st.builds(
        a.Count, st.sampled_from([a.CountOp.AT_LEAST, a.CountOp.MORE_THAN]), st.integers(1, 3)
    ),
    st.builds(
        a.Count,
        st.sampled_from([a.CountOp.AT_MOST, a.CountOp.EXACTLY, a.CountOp.FEWER_THAN]),
        st.integers(1, 3),
    ),
    st.just(a.Count(a.CountOp.EXACTLY, 0)),
)

event_counts = st.builds(a.EventCount, event_selectors, counts, st.none() | durations)
aggregates = st.builds(
    a.Aggregate,
    st.sampled_from(list(a.AggregateFunc)),
    st.just("amount"),
    _selector_for("purchased"),
    st.none() | durations,
    st.sampled_from(list(a.CompareOp)),
    st.sampled_from([0, 40, 50.5, 100, 150, 30.3, 0.8, 50, 15.15]),
)
recencies = st.builds(
    a.Recency,
    st.sampled_from(list(a.Which)),
    st.one_of(event_selectors, _selector_for(None)),
    st.sampled_from(list(a.RecencyOp)),
    durations,
)
date_literals = instants.map(a.DateValue)
properties = st.one_of(
    st.builds(
        a.Compare,
        st.just("country"),
        st.sampled_from([a.CompareOp.EQ, a.CompareOp.NE]),
        st.sampled_from(["de", "FR", True, 1, "z\u00fcrich"]),
    ),
    st.builds(
        a.Compare,
        st.just("score"),
        st.sampled_from(list(a.CompareOp)),
        st.sampled_from([0, 50, 50.5]),
    ),
    st.builds(a.Between, st.just("score"), st.just(10), st.sampled_from([50, 60.5])),
    st.builds(
        a.InList,
        st.just("country"),
        st.sampled_from([("DE", "at"), ("de", 5, True), (1, "Zu\u0308rich"), (False,)]),
        st.booleans(),
    ),
    st.builds(a.TextMatch, st.just("country"), st.sampled_from(list(a.TextOp)), st.just("e")),
    st.builds(a.Known, st.sampled_from(["country", "score", "signup"]), st.booleans()),
    st.builds(a.DateCompare, st.just("signup"), st.sampled_from(list(a.DateOp)), date_literals),
    st.builds(a.Compare, st.just("signup"), st.sampled_from(list(a.CompareOp)), date_literals),
    st.builds(a.Ago, st.just("signup"), st.sampled_from(list(a.AgoOp)), durations),
)
leaves = st.one_of(event_counts, aggregates, recencies, properties)
rules = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(a.Not, inner),
        st.builds(a.And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(a.Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=5,
)


def windows_of(rule: a.Condition) -> list[int]:
    """Every duration in a rule, in ms."""
    found = []
    for node in a.walk(rule):
        for d in (getattr(node, "window", None), getattr(node, "duration", None)):
            if d is not None:
                found.append(d.ms)
    return found


def interesting_instants(rule: a.Condition, events: list[Event]) -> list[int]:
    """Instants where things happen, and one millisecond either side of them."""
    points = {BASE - SECOND, BASE + SPAN * SECOND}
    for e in events:
        points.add(e.occurred_at)
        for w in windows_of(rule):
            points.add(e.occurred_at + w)
    return sorted({p + d for p in points for d in (-1, 0, 1)})
