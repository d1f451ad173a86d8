"""Whether an instant's new events bear on a segment, asked of their kinds (and remembered per
set of kinds), is what asking of each event gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.history import CONTACT_UPDATED, Event, History
from engine.reads import Reads, Touched
from tests.engine.strategies import BASE

TYPES = ["email_opened", "purchased", CONTACT_UPDATED]
KEYS = ["country", "score", "city"]

events = st.lists(
    st.tuples(st.sampled_from(TYPES), st.sets(st.sampled_from(KEYS))), min_size=1, max_size=4
).map(
    lambda drawn: [
        Event(i, f"e{i}", kind, BASE, BASE, dict.fromkeys(keys) if kind == CONTACT_UPDATED else {})
        for i, (kind, keys) in enumerate(drawn, 1)
    ]
)
reads = st.builds(
    Reads,
    types=st.frozensets(st.sampled_from([*TYPES, None])),
    properties=st.frozensets(st.sampled_from(KEYS)),
    segments=st.just(frozenset({"s"})),
    ways=st.just({}),
)
EARLIER = Event(0, "e0", "email_opened", BASE - 1000, BASE - 1000, {})


@given(reads=reads, first=events, second=events)
def test_the_kinds_of_new_events_bear_on_a_segment_as_the_events_do(reads, first, second):
    for arrived in (first, second, first):  # the third answer comes from what was remembered
        touched = Touched("c", History([EARLIER, *arrived]), arrived, BASE)
        bearing = [e.position for e in arrived if reads.affected_by(e)]
        assert touched.bears_on(reads) == bool(bearing)
        assert touched.causes(reads) == bearing
        # A contact that comes into being now: every one of its events is a cause.
        assert Touched("c", History(arrived), arrived, BASE).causes(reads) == [
            e.position for e in arrived
        ]
