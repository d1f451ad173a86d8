"""What a segment's membership depends on, and what an instant's entries bring a contact:
together they decide whom an append must evaluate again, and for which segments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.history import CONTACT_UPDATED, Event, History
from engine.monotone import DOWN, EITHER, UNREAD, UP, direction_of

# Sets of kinds of new events remembered, at most (per segment, and the shared ones): past it
# they are forgotten, or a producer setting ever new combinations of properties would grow
# them without end.
KINDS_KEPT = 10_000

Kinds = frozenset[tuple[str, frozenset[str]]]


def _kept(cache: dict, key: object, value: object) -> None:
    if len(cache) >= KINDS_KEPT:
        cache.clear()
    cache[key] = value


@dataclass(frozen=True)
class Reads:
    """What a segment's membership depends on: its rule and the rules it refers to."""

    types: frozenset[str | None]
    properties: frozenset[str]
    segments: frozenset[str]  # ids in its closure, itself included
    ways: dict[str | None, int]  # per event type: which way it can move the rule
    # Per set of kinds of new events, which ways they can move it, and whether they can
    # change it at all (a few sets recur).
    _moves: dict[frozenset, frozenset[int]] = field(default_factory=dict, compare=False)
    _bears: dict[frozenset, bool] = field(default_factory=dict, compare=False)

    def affected_by(self, event: Event) -> bool:
        """Whether an event of a contact can change the segment's value for that contact."""
        return self._affected(event.type, event.data)

    def affected_by_any(self, kinds: Kinds) -> bool:
        """Whether events of these kinds (type, keys set) can change the segment's value."""
        found = self._bears.get(kinds)
        if found is None:
            found = any(self._affected(t, keys) for t, keys in kinds)
            _kept(self._bears, kinds, found)
        return found

    def _affected(self, event_type: str, keys: Iterable[str]) -> bool:
        if None in self.types or event_type in self.types:
            return True
        return event_type == CONTACT_UPDATED and not self.properties.isdisjoint(keys)

    def blind_to(self, touched: Touched) -> bool:
        """Whether the rule reads nothing of a brand-new contact but that it exists: then its
        value is the same for every such contact, whatever the instant."""
        return touched.fresh and len(self.segments) == 1 and not touched.bears_on(self)

    def way(self, event_type: str, keys: frozenset[str] = frozenset()) -> int:
        """Which way an event of a type (setting `keys`, for contact_updated) can move the
        segment's value (engine.monotone)."""
        if keys and not self.properties.isdisjoint(keys):
            return EITHER
        return direction_of(self.ways, event_type)

    def moves(self, kinds: Kinds) -> frozenset[int]:
        """The ways events of these kinds (type, keys set) can move the value, UNREAD left out."""
        found = self._moves.get(kinds)
        if found is None:
            found = frozenset({self.way(t, keys) for t, keys in kinds} - {UNREAD})
            _kept(self._moves, kinds, found)
        return found


class Touched:
    """A contact with entries at the instant being applied: new events or static-list edits."""

    def __init__(
        self,
        contact: str,
        history: History,
        events: list[Event],
        r: int,
        seen: dict[Kinds, Kinds] | None = None,
    ) -> None:
        self.contact = contact
        self.history = history
        self.events = events
        self.edits: dict[str, int] = {}
        self.visible = [e for e in events if e.occurred_at <= r]
        # What the new events are, as far as which way they can move a rule goes; the one
        # object for equal sets in `seen`, so that every segment finds them by identity, not
        # by comparing sets of sets.
        kinds = frozenset(
            (e.type, frozenset(e.data) if e.type == CONTACT_UPDATED else frozenset())
            for e in events
        )
        if seen is not None:
            found = seen.get(kinds)
            if found is None:
                _kept(seen, kinds, kinds)
            else:
                kinds = found
        self.kinds = kinds
        # Until r the contact had no visible event: every event of r brings it into being.
        self.new = (
            bool(self.visible) and history.visible_from is not None and history.visible_from >= r
        )
        # It exists, and every event it has arrived now, none dated ahead: it has no
        # membership nor deadline yet.
        self.fresh = bool(self.visible) and len(self.visible) == len(history.events)
        self.moves_start = False
        if events:
            # An event dated before everything else moves the instant the contact exists from.
            first_new = min(e.occurred_at for e in events)
            self.moves_start = history.exists_from() == first_new and not any(
                e.occurred_at == first_new for e in history.events[: -len(events)]
            )

    def bears_on(self, reads: Reads) -> bool:
        """Whether any of the new events can change the segment's value at some instant."""
        return reads.affected_by_any(self.kinds)

    def causes(self, reads: Reads) -> list[int]:
        """Positions of this instant's entries that bear on a segment for this contact."""
        if self.new:
            found = [e.position for e in self.visible]
        elif self.bears_on(reads):
            found = [e.position for e in self.visible if reads.affected_by(e)]
        else:
            found = []
        found += [p for s, p in self.edits.items() if s in reads.segments]
        return found

    def needs(self, reads: Reads, member: bool) -> bool:
        """Whether the segment must be evaluated again for this contact at this instant.

        Not when every new event can only move the rule the way it already is (an engaged
        member opening one more email): the value cannot change now.
        """
        if self.new or self.moves_start or any(s in reads.segments for s in self.edits):
            return True
        ways = reads.moves(self.kinds)
        if not ways:
            return False
        return not ((ways == {UP} and member) or (ways == {DOWN} and not member))
