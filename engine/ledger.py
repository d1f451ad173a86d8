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
    MembershipRow,
    ProjectionSession,
    TransitionRecord,
)

Key = tuple[str, str]  # (segment id, contact id)


class Ledger:
    """A write-back cache over one projection session."""

    def __init__(self, session: ProjectionSession) -> None:
        self.session = session
        self._since: dict[Key, int] = {}  # the members, since when
        self._due: dict[Key, int] = {}
        self._forecasts: dict[Key, Forecast] = {}
        self._loaded: set[str] = set()  # contacts whose every row was read
        # Rows known one at a time, not with all of their contact's: read for one segment
        # (load_segment) or settled (settle_foreseen).
        self._known: set[Key] = set()
        self._written: set[Key] = set()  # rows changed since the last flush
        self._transitions: list[TransitionRecord] = []
        self._last_id: int | None = None
        self.earliest_new_due: int | None = None  # the earliest deadline set since reset

    def load(self, contacts: Iterable[str]) -> None:
        """Read the rows of contacts not read yet, in one query."""
        loaded = self._loaded
        missing = [c for c in contacts if c not in loaded]
        if not missing:
            return
        self._keep(self.session.memberships_of(missing))
        self._loaded.update(missing)

    def load_segment(self, segment_id: str, contacts: Iterable[str]) -> None:
        """Read the rows of some contacts in one segment, in one query: for work on that
        segment alone (a new rule settles a hundred thousand contacts), their rows in the
        others are not needed."""
        missing = [
            c for c in contacts if c not in self._loaded and (segment_id, c) not in self._known
        ]
        if not missing:
            return
        self._keep(self.session.memberships_of(missing, segment_id))
        self._known.update((segment_id, c) for c in missing)

    def _keep(self, rows: Iterable[MembershipRow]) -> None:
        for segment_id, contact, since, due, forecast in rows:
            key = (segment_id, contact)
            if key in self._written:
                continue  # changed here since it was known: newer than the session's
            if since is not None:
                self._since[key] = since
            if due is not None:
                self._due[key] = due
            if forecast is not None:
                self._forecasts[key] = forecast

    def _read(self, segment_id: str, contact: str) -> None:
        if contact not in self._loaded and (segment_id, contact) not in self._known:
            self.load((contact,))

    def is_member(self, segment_id: str, contact: str) -> bool:
        """Whether the contact is a member now."""
        self._read(segment_id, contact)
        return (segment_id, contact) in self._since

    def set_member(self, segment_id: str, contact: str, since: int | None) -> None:
        """Make the contact a member since an instant, or not a member (None)."""
        self._read(segment_id, contact)
        key = (segment_id, contact)
        if since is None:
            self._since.pop(key, None)
        else:
            self._since[key] = since
        self._written.add(key)

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
        self._written.add(key)

    def settle_foreseen(
        self, segment_id: str, rule_version: int, t: int, rows: Sequence[MembershipRow]
    ) -> list[TransitionRecord]:
        """At their deadline t, make each contact's membership what its forecast brings, and
        set the next deadline (without a forecast); the transitions made, written with the next
        flush. The same as set_member, add_transition and set_deadline row by row, in bulk:
        a second can bring a hundred thousand. The rows are as read after the last flush, and
        unchanged since (each contact's row in a segment has one deadline, settled once);
        none may have a transition at t."""
        if not rows:
            return []
        if self._last_id is None:
            self._last_id = self.session.last_transition_id()
        since_of, due_of, forecasts = self._since, self._due, self._forecasts
        known, written = self._known, self._written
        made = []
        for _, contact, since, _, forecast in rows:
            key = (segment_id, contact)
            known.add(key)  # from here on, the ledger's row is the one settled now
            forecasts.pop(key, None)
            if forecast.then_member:
                if since is None:
                    self._last_id += 1
                    made.append(
                        TransitionRecord(
                            segment_id, contact, ENTERED, t, rule_version, BY_TIME, self._last_id
                        )
                    )
                    since = t
                since_of[key] = since
            elif since is not None:
                self._last_id += 1
                made.append(
                    TransitionRecord(
                        segment_id, contact, EXITED, t, rule_version, BY_TIME, self._last_id
                    )
                )
                since_of.pop(key, None)
            written.add(key)
            due = forecast.then_due
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
        if self._written:
            since, due, forecasts = self._since.get, self._due.get, self._forecasts.get
            self.session.write_memberships(
                [(*key, since(key), due(key), forecasts(key)) for key in self._written]
            )
            self._written.clear()

    def forget(self) -> None:
        """Write back, then drop everything read (the session's tables change behind it)."""
        self.flush()
        self._since.clear()
        self._due.clear()
        self._forecasts.clear()
        self._loaded.clear()
        self._known.clear()
        self._last_id = None
