"""What a segment's membership depends on, and what an instant's entries bring a contact:
together they decide whom an append must evaluate again, and for which segments."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.history import CONTACT_UPDATED, Event, History
from engine.monotone import DOWN, EITHER, UNREAD, UP, direction_of


@dataclass(frozen=True)
class Reads:
    """What a segment's membership depends on: its rule and the rules it refers to."""

    types: frozenset[str | None]
    properties: frozenset[str]
    segments: frozenset[str]  # ids in its closure, itself included
    ways: dict[str | None, int]  # per event type: which way it can move the rule
    # Per set of kinds of new events, which ways they can move it (a few sets recur).
    _moves: dict[frozenset, frozenset[int]] = field(default_factory=dict, compare=False)

    def affected_by(self, event: Event) -> bool:
        """Whether an event of a contact can change the segment's value for that contact."""
        if None in self.types or event.type in self.types:
            return True
        return event.type == CONTACT_UPDATED and not self.properties.isdisjoint(event.data)

    def blind_to(self, touched: Touched) -> bool:
        """Whether the rule reads nothing of a brand-new contact but that it exists: then its
        value is the same for every such contact, whatever the instant."""
        return (
            touched.fresh
            and len(self.segments) == 1
            and not any(self.affected_by(e) for e in touched.events)
        )

    def way(self, event_type: str, keys: frozenset[str] = frozenset()) -> int:
        """Which way an event of a type (setting `keys`, for contact_updated) can move the
        segment's value (engine.monotone)."""
        if keys and not self.properties.isdisjoint(keys):
            return EITHER
        return direction_of(self.ways, event_type)

    def moves(self, kinds: frozenset[tuple[str, frozenset[str]]]) -> frozenset[int]:
        """The ways events of these kinds (type, keys set) can move the value, UNREAD left out."""
        found = self._moves.get(kinds)
        if found is None:
            found = frozenset({self.way(t, keys) for t, keys in kinds} - {UNREAD})
            self._moves[kinds] = found
        return found


class Touched:
    """A contact with entries at the instant being applied: new events or static-list edits."""

    def __init__(self, contact: str, history: History, events: list[Event], r: int) -> None:
        self.contact = contact
        self.history = history
        self.events = events
        self.edits: dict[str, int] = {}
        self.visible = [e for e in events if e.occurred_at <= r]
        # What the new events are, as far as which way they can move a rule goes.
        self.kinds = frozenset(
            (e.type, frozenset(e.data) if e.type == CONTACT_UPDATED else frozenset())
            for e in events
        )
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
        return any(reads.affected_by(e) for e in self.events)

    def causes(self, reads: Reads) -> list[int]:
        """Positions of this instant's entries that bear on a segment for this contact."""
        found = [e.position for e in self.visible if self.new or reads.affected_by(e)]
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
