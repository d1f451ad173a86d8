"""The contract of a membership projection store: its records and its Protocols.

Membership, transitions, deadlines and the contact list are projections of the log:
they can be dropped and rebuilt. A session is one write transaction; its checkpoint
(the last applied position, and the instant up to which time was processed) commits
with the changes it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

ENTERED = "entered"
EXITED = "exited"


@dataclass(frozen=True)
class Cause:
    """Why a transition happened: a log entry (by position), or time reaching a boundary."""

    kind: str  # "event", "list_edit", "created", "rule_changed", "archived" or "time"
    position: int | None = None


BY_TIME = Cause("time")  # a window boundary, a recency threshold or a date reached


class TransitionRecord(NamedTuple):
    """A contact entering or leaving a segment at an instant (a tuple: made by the hundred
    thousand when a second's deadlines fall due)."""

    segment_id: str
    contact_id: str
    kind: str
    at: int
    rule_version: int
    cause: Cause
    id: int | None = None


class Forecast(NamedTuple):
    """What a deadline brings if no new entry bears on the contact before it: membership
    becomes `then_member`, and `then_due` is the next deadline (None: none). A rule is
    evaluated when a deadline is set; its forecast spares evaluating it again, with the
    contact's events read back, when the deadline falls due."""

    then_member: bool
    then_due: int | None


# A contact's standing in a segment as plain values: (segment_id, contact_id, member since
# or None, deadline or None, what the deadline brings or None). Neither member nor with a
# deadline: no row is kept.
MembershipRow = tuple[str, str, int | None, int | None, Forecast | None]

# A transition as plain values, for bulk writes: (segment_id, contact_id, kind, at,
# rule_version, cause kind, cause position).
TransitionRow = tuple[str, str, str, int, int, str, int | None]


@dataclass(frozen=True)
class DefinitionRecord:
    """A segment definition event, kept so the registry can be rebuilt without a log scan."""

    position: int
    stream: str
    type: str
    recorded_at: int
    data: dict[str, Any]


class ContactReads(Protocol):
    """The projection's view of contacts, for set-wise questions: when each one's first and
    latest events occurred, and each property's latest value (faster than scanning the log)."""

    def contacts(self) -> list[str]:
        """Every known contact."""
        ...

    def started_by(self, until: int) -> set[str]:
        """The contacts whose first event occurred at or before `until`."""
        ...

    def first_events(self, after: int | None, until: int | None) -> dict[str, int]:
        """The contacts whose first event occurred in (after, until] (None: unbounded), with
        its instant."""
        ...

    def last_events(self, after: int | None, until: int | None) -> dict[str, int]:
        """The contacts whose latest event occurred in (after, until] (None: unbounded), with
        its instant."""
        ...

    def values_of(self, prop: str) -> Iterator[tuple[str, str, int]]:
        """(contact, value as JSON, occurred_at) of each contact's latest assignment of a prop."""
        ...

    def value_groups(self, prop: str, until: int) -> tuple[list[tuple[str, list[str]]], list[str]]:
        """The contacts whose latest value of a property was set by `until`, grouped by its
        JSON text; and the contacts whose latest value was set after it."""
        ...

    def value_texts(self, prop: str, until: int) -> list[str]:
        """The distinct JSON texts of the latest values of a property set by `until`."""
        ...

    def some_values(self, prop: str, limit: int) -> list[str]:
        """The JSON texts of up to `limit` contacts' latest values of a property, any."""
        ...

    def holders(self, prop: str, until: int, texts: Sequence[str]) -> tuple[list[str], list[str]]:
        """The contacts whose latest value of a property, set by `until`, is one of `texts`;
        and the contacts whose latest value was set after it."""
        ...


class ContactViewBuild(Protocol):
    """The contact view of the log being built in the background (ProjectionStore's
    `contact_view_from_log`), for a session of the same store to copy in."""


class ProjectionSession(ContactReads, Protocol):
    """One write transaction on the projection."""

    position: int
    instant: int

    def advance(self, position: int, instant: int) -> None:
        """Record the last applied position and the instant processed up to."""
        ...

    def clear(self) -> None:
        """Drop everything the projection holds, checkpoint included, in this transaction:
        readers see the projection as it was until a new one is committed in its place."""
        ...

    def save_definition(self, record: DefinitionRecord) -> None:
        """Keep a segment definition event."""
        ...

    def add_transition(self, record: TransitionRecord) -> int:
        """Store a transition; returns its id."""
        ...

    def last_transition_id(self) -> int:
        """The highest transition id, 0 if none."""
        ...

    def write_transitions(self, records: Sequence[TransitionRecord]) -> None:
        """Store transitions that carry their ids."""
        ...

    def insert_transitions(self, rows: Iterable[TransitionRow]) -> None:
        """Store many new transitions at once, ids given in order (a rebuild's bulk write)."""
        ...

    def bulk(self) -> AbstractContextManager[None]:
        """While it lasts, writes need not keep secondary indexes up to date row by row;
        they are whole again when it ends (for filling an empty projection)."""
        ...

    def delete_transition(self, transition_id: int) -> None:
        """Remove a transition undone within the same instant."""
        ...

    def revise_transition(self, transition_id: int, cause: Cause, rule_version: int) -> None:
        """Give a transition a later cause of the same instant (and the rule then in force)."""
        ...

    def transitions_at(
        self, instant: int, contacts: Sequence[str] | None = None
    ) -> list[TransitionRecord]:
        """The transitions of some contacts (None: all) stamped with the instant the
        projection has reached (its checkpoint's); transitions are written in order of
        instant."""
        ...

    def last_transition(self, segment_id: str, contact_id: str) -> TransitionRecord | None:
        """A contact's latest transition in a segment."""
        ...

    def due(self, before: int, limit: int) -> list[MembershipRow]:
        """The rows whose deadline falls before an instant, earliest first."""
        ...

    def unforeseen(
        self, after: tuple[int, str, str], window: int, limit: int
    ) -> tuple[list[MembershipRow], tuple[int, str, str] | None]:
        """Up to `limit` rows whose deadline has no forecast, among the next `window`
        deadlines in (due, segment, contact) order after the one given; and the key of the
        last deadline looked at (None: the window reached the last deadline)."""
        ...

    def clear_deadlines(self, segment_id: str) -> None:
        """Drop a segment's deadlines."""
        ...

    def next_deadline(self) -> int | None:
        """The earliest deadline."""
        ...

    def add_contacts(self, spans: Sequence[tuple[str, int, int]]) -> None:
        """Remember contacts with the earliest and latest occurred_at of their events."""
        ...

    def assign_values(self, rows: Iterable[tuple[str, str, Any, int, int]]) -> None:
        """(contact, prop, value, occurred_at, position): keep each latest assignment."""
        ...

    def copy_contact_view(self, build: ContactViewBuild) -> None:
        """Fill the contact view with a build's rows, once it is done."""
        ...

    def member_set(self, segment_id: str) -> set[str]:
        """Every current member."""
        ...

    def known_contacts(self, contact_ids: Sequence[str]) -> set[str]:
        """Those of the contacts the projection knows already."""
        ...

    def memberships_of(
        self, contact_ids: Sequence[str], segment_id: str | None = None
    ) -> list[MembershipRow]:
        """The rows of some contacts, in every segment or in one."""
        ...

    def write_memberships(self, rows: Sequence[MembershipRow]) -> None:
        """Set each row as given; a row neither member nor with a deadline is removed."""
        ...

    def deadlines_of(self, segment_id: str) -> dict[str, int]:
        """Every contact's deadline in a segment."""
        ...

    def replace_deadlines(self, segment_id: str, deadlines: dict[str, int]) -> None:
        """Set every deadline of a segment at once (none with a forecast)."""
        ...


class ProjectionStore(ContactReads, Protocol):
    """Where a membership projection lives."""

    def session(self, wait: bool = True) -> AbstractContextManager[ProjectionSession]:
        """A write transaction (the only writer while it lasts); without `wait`, StoreBusy at
        once if another writer holds the database."""
        ...

    def contact_view_from_log(
        self, max_position: int
    ) -> AbstractContextManager[ContactViewBuild | None]:
        """Start building the contact view of the log up to a position in the background, if
        the log lives with the projection (else None); a session copies it in, or it is
        dropped on exit."""
        ...

    def definitions(self) -> list[DefinitionRecord]:
        """Every kept segment definition event, in log order."""
        ...

    def checkpoint(self) -> tuple[int, int]:
        """(position, instant) last committed."""
        ...

    def next_deadline(self) -> int | None:
        """The earliest deadline."""
        ...

    def definitions_position(self) -> int:
        """The position of the newest kept definition event, 0 if none."""
        ...

    def member_page(self, segment_id: str, after: str | None, limit: int) -> list[tuple[str, int]]:
        """Current members (contact_id, since) in contact order, after a cursor."""
        ...

    def member_count(self, segment_id: str) -> int:
        """How many members a segment has now."""
        ...

    def members_among(self, segment_id: str, contact_ids: Sequence[str]) -> set[str]:
        """Which of some contacts are members now."""
        ...

    def contact_segments(self, contact_id: str) -> list[tuple[str, int]]:
        """(segment_id, since) of the segments a contact is in now."""
        ...

    def transition_page(
        self, segment_id: str, contact_id: str | None, after: int, limit: int
    ) -> list[TransitionRecord]:
        """A segment's transitions in order of id, optionally for one contact."""
        ...

    def all_transitions(self) -> Iterator[TransitionRecord]:
        """Every transition, in a canonical order (for comparisons)."""
        ...

    def all_members(self) -> Iterator[tuple[str, str, int]]:
        """Every (segment_id, contact_id, since), in a canonical order."""
        ...

    def snapshot(
        self,
    ) -> AbstractContextManager[
        tuple[tuple[int, int], Iterator[TransitionRecord], Iterator[tuple[str, str, int]]]
    ]:
        """The checkpoint, transitions and members, all from one consistent snapshot."""
        ...

    def reset(self) -> None:
        """Drop everything the projection holds, checkpoint included."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
