"""A contact's history answers the same whether it scans its events or keeps indexes, however
its events arrive: the brute-force reading of its events decides."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.history import CONTACT_UPDATED, INDEXED_FROM, Event, History, PropertyValue
from tests.engine.strategies import BASE, SECOND, SPAN, TYPES, histories

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTIES = ("country", "score", "signup", "missing")


def _by_time(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.occurred_at, e.position))


def _has_campaign(data: dict) -> bool:
    return "campaign" in data


def _assignments(events: list[Event], prop: str) -> list[PropertyValue]:
    return [
        PropertyValue(e.occurred_at, e.position, e.data[prop], e.event_id)
        for e in _by_time(events)
        if e.type == CONTACT_UPDATED and prop in e.data
    ]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Event], list[int]]:
    """Events in log order (long enough to be indexed), and where they are cut into adds."""
    events = draw(histories(max_events=INDEXED_FROM * 2 + 4))
    cuts = draw(st.lists(st.integers(0, len(events)), max_size=4))
    return events, sorted(cuts)


@SETTINGS
@given(
    arrived=arrivals(),
    indexed_from=st.sampled_from([0, 3, INDEXED_FROM, 10**9]),
    t=st.integers(-1, SPAN + 1).map(lambda s: BASE + s * SECOND),
)
def test_every_answer_is_the_brute_force_one(arrived, indexed_from, t):
    events, cuts = arrived
    bounds = [*cuts, len(events)]
    history = History(events[: bounds[0]], indexed_from)
    for lo, hi in itertools.pairwise(bounds):
        history.add(events[lo:hi])
        # Asked in between too: an index built after a selection was read stays true.
        history.selected("opened", "email_opened", None)

    in_time = _by_time(events)
    assert history.exists_from() == (in_time[0].occurred_at if in_time else None)
    later = [e.occurred_at for e in in_time if e.occurred_at > t]
    assert history.first_after(t) == (later[0] if later else None)
    selections = {
        "opened": ("email_opened", None),
        "any": (None, None),
        "campaign": ("email_opened", _has_campaign),
        **{kind: (kind, None) for kind in TYPES},
    }
    for key, (kind, matches) in selections.items():
        expected = [
            e
            for e in in_time
            if (kind is None or e.type == kind) and (matches is None or matches(e.data))
        ]
        chosen, times = history.selected(key, kind, matches)
        assert list(chosen) == expected
        assert list(times) == [e.occurred_at for e in expected]
    known = {}
    for prop in PROPERTIES:
        values = _assignments(events, prop)
        found, times = history.property_values(prop)
        assert list(found) == values
        assert list(times) == [v.occurred_at for v in values]
        before = [v for v in values if v.occurred_at <= t]
        assert history.property_at(prop, t) == (before[-1] if before else None)
        if before and before[-1].value is not None:
            known[prop] = before[-1].value
    assert history.properties_at(t) == known
