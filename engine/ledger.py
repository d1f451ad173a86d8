"""Membership and deadlines of the contacts the projector is working on: read in bulk for
the contacts of an instant, changed in memory, written back in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eventstore.projection import (
    BY_TIME,
    ENTERED,
    EXITED,
    Cause,
    Forecast,
    ProjectionSession,
    TransitionRecord,
)

Key = tuple[str, str]  # (segment id, contact id)


class Ledger:
    """A write-back cache over one projection session."""

    def __init__(self, session: ProjectionSession) -> None:
        self.session = session
        self._members: set[Key] = set()
        self._due: dict[Key, int] = {}
        self._forecasts: dict[Key, Forecast] = {}
        self._loaded: set[str] = set()  # contacts whose every row was read
        self._known: set[Key] = set()  # single rows read (see know)
        self._member_writes: dict[Key, int | None] = {}
        self._due_writes: dict[Key, int | None] = {}
        self._transitions: list[TransitionRecord] = []
        self._last_id: int | None = None
        self.earliest_new_due: int | None = None  # the earliest deadline set since reset

    def load(self, contacts: Iterable[str]) -> None:
        """Read the memberships and deadlines of contacts not read yet, in two queries."""
        loaded = self._loaded
        missing = [c for c in contacts if c not in loaded]
        if not missing:
            return
        # Rows changed here since they were known are newer than what the session holds.
        for segment_id, contact, _ in self.session.members_of(missing):
            if (segment_id, contact) not in self._member_writes:
                self._members.add((segment_id, contact))
        for segment_id, contact, due, forecast in self.session.deadlines_for(missing):
            if (segment_id, contact) not in self._due_writes:
                self._due[(segment_id, contact)] = due
                if forecast is not None:
                    self._forecasts[(segment_id, contact)] = forecast
        self._loaded.update(missing)

    def know(self, segment_id: str, deadlines: Iterable[tuple[str, int, Forecast]]) -> None:
        """Take one segment's deadlines of some contacts, with forecasts, as read elsewhere:
        a forecast tells the membership until the deadline. Other rows are read when asked."""
        for contact, due, forecast in deadlines:
            key = (segment_id, contact)
            if contact in self._loaded or key in self._known:
                continue
            self._known.add(key)
            self._due[key] = due
            self._forecasts[key] = forecast
            if forecast.member:
                self._members.add(key)

    def _read(self, segment_id: str, contact: str) -> None:
        if contact not in self._loaded and (segment_id, contact) not in self._known:
            self.load((contact,))

    def is_member(self, segment_id: str, contact: str) -> bool:
        """Whether the contact is a member now."""
        self._read(segment_id, contact)
        return (segment_id, contact) in self._members

    def set_member(self, segment_id: str, contact: str, since: int | None) -> None:
        """Make the contact a member since an instant, or not a member (None)."""
        self._read(segment_id, contact)
        key = (segment_id, contact)
        if since is None:
            self._members.discard(key)
        else:
            self._members.add(key)
        self._member_writes[key] = since

    def deadline(self, segment_id: str, contact: str) -> int | None:
        """The contact's deadline in a segment."""
        self._read(segment_id, contact)
        return self._due.get((segment_id, contact))

    def set_deadline(
        self, segment_id: str, contact: str, due: int | None, forecast: Forecast | None = None
    ) -> None:
        """The next instant the membership can change with no new event (None: never), and
        what it brings then, if that is known."""
        self._read(segment_id, contact)
        key = (segment_id, contact)
        if self._due.get(key) == due and self._forecasts.get(key) == forecast:
            return
        if forecast is None:
            self._forecasts.pop(key, None)
        else:
            self._forecasts[key] = forecast
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = due
            if self.earliest_new_due is None or due < self.earliest_new_due:
                self.earliest_new_due = due
        self._due_writes[key] = due

    def settle_foreseen(
        self, segment_id: str, rule_version: int, t: int, rows: Sequence[tuple[str, Forecast]]
    ) -> list[TransitionRecord]:
        """At their deadline t, make each contact's membership what its forecast brings, and
        set the next deadline (without a forecast); the transitions made, written with the next
        flush. The same as set_member, add_transition and set_deadline row by row, in bulk:
        a second can bring a hundred thousand. None of the rows may have a transition at t."""
        if not rows:
            return []
        if self._last_id is None:
            self._last_id = self.session.last_transition_id()
        members, due_of, forecasts = self._members, self._due, self._forecasts
        member_writes, due_writes = self._member_writes, self._due_writes
        made = []
        for contact, forecast in rows:
            key = (segment_id, contact)
            self._read(segment_id, contact)
            then = forecast.then_member
            if then != (key in members):
                self._last_id += 1
                kind = ENTERED if then else EXITED
                made.append(
                    TransitionRecord(
                        segment_id, contact, kind, t, rule_version, BY_TIME, self._last_id
                    )
                )
                if then:
                    members.add(key)
                    member_writes[key] = t
                else:
                    members.discard(key)
                    member_writes[key] = None
            forecasts.pop(key, None)
            due = forecast.then_due
            due_writes[key] = due
            if due is None:
                due_of.pop(key, None)
            else:
                due_of[key] = due
                if self.earliest_new_due is None or due < self.earliest_new_due:
                    self.earliest_new_due = due
        self._transitions += made
        return made

    def add_transition(
        self,
        segment_id: str,
        contact: str,
        kind: str,
        at: int,
        rule_version: int,
        cause: Cause,
    ) -> TransitionRecord:
        """A new transition, given its id now and written with the next flush."""
        if self._last_id is None:
            self._last_id = self.session.last_transition_id()
        self._last_id += 1
        record = TransitionRecord(segment_id, contact, kind, at, rule_version, cause, self._last_id)
        self._transitions.append(record)
        return record

    def flush_transitions(self) -> None:
        """Write the new transitions back to the session."""
        if self._transitions:
            self.session.write_transitions(self._transitions)
            self._transitions.clear()

    def flush(self) -> None:
        """Write every change back to the session."""
        self.flush_transitions()
        if self._member_writes:
            self.session.write_members(
                [(s, c, v) for (s, c), v in self._member_writes.items() if v is not None],
                [(s, c) for (s, c), v in self._member_writes.items() if v is None],
            )
            self._member_writes.clear()
        if self._due_writes:
            forecasts = self._forecasts
            self.session.write_deadlines(
                [
                    (s, c, v, forecasts.get((s, c)))
                    for (s, c), v in self._due_writes.items()
                    if v is not None
                ],
                [(s, c) for (s, c), v in self._due_writes.items() if v is None],
            )
            self._due_writes.clear()

    def forget(self) -> None:
        """Write back, then drop everything read (the session's tables change behind it)."""
        self.flush()
        self._members.clear()
        self._due.clear()
        self._forecasts.clear()
        self._loaded.clear()
        self._known.clear()
        self._last_id = None
