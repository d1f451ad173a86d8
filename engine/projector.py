"""The membership projection: applies the log and the passage of time to segment membership.

Membership of a contact in a segment is a function of time,

    member(t) = the segment is live at t, the contact exists at t, and the rule version in
                force at t holds for the contact's events recorded up to t,

and transitions are exactly its change points. The projector evaluates at two kinds of
instants: when entries are recorded (all entries of one recorded_at form one instant), and
at deadlines (each contact's next possible change in each segment). Deadlines due at or
before an instant are processed before its entries, so the result depends only on the log
and the instant time was processed up to, never on when or in how many pieces the work was
done: several appends in the same millisecond net out to one change, whose cause is the
highest-positioned entry of that instant that bears on it (or time, if none does). Replaying
the log therefore gives the same transitions as the live run.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

from engine.evaluate import Context, Explanation, Outcome, evaluate_member
from engine.histories import Histories, contact_of, to_event
from engine.history import CONTACT_UPDATED, Event, History
from engine.ledger import Ledger
from engine.monotone import EITHER, directions
from engine.population import Answer, ContactsAt, SetEvaluator
from engine.reads import Kinds, Reads, Touched
from engine.segments import (
    DEFINITION_TYPES,
    DYNAMIC,
    MEMBERS_ADDED,
    SEGMENT_ARCHIVED,
    SEGMENT_DEFINED,
    SEGMENT_RULE_CHANGED,
    SEGMENT_STREAM,
    STATIC_EDIT_TYPES,
    Registry,
    Segment,
)
from eventstore.interface import EventStore, StoredEvent
from eventstore.projection import (
    BY_TIME,
    ENTERED,
    EXITED,
    Cause,
    DefinitionRecord,
    Forecast,
    MembershipRow,
    ProjectionSession,
    ProjectionStore,
    TransitionRecord,
)

CAUSE_OF_DEFINITION = {
    SEGMENT_DEFINED: "created",
    SEGMENT_RULE_CHANGED: "rule_changed",
    SEGMENT_ARCHIVED: "archived",
}


def assignments(arrived: dict[str, list[Event]]) -> list[tuple[str, str, Any, int, int]]:
    """The contact view's rows for new `contact_updated` events: (contact, prop, value,
    occurred_at, position)."""
    return [
        (contact, prop, value, e.occurred_at, e.position)
        for contact, events in arrived.items()
        for e in events
        if e.type == CONTACT_UPDATED
        for prop, value in e.data.items()
    ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold back Python's cycle collector for one transaction's work.

    A batch allocates hundreds of thousands of small objects (histories, transitions) that
    live until it ends; each full collection would walk all of them again, which cost about a
    quarter of the time of a large batch of deadlines. Cycles are collected afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class LedgerSegments:
    """Another segment's membership for one contact, as the projection holds it now."""

    def __init__(self, ledger: Ledger, registry: Registry, contact: str) -> None:
        self.ledger = ledger
        self.registry = registry
        self.contact = contact

    def membership(self, segment_id: str, t: int) -> Outcome:
        """Current membership and its deadline (the projection is at instant t)."""
        segment = self.registry.get(segment_id)
        if segment is None or not segment.active_at(t):
            return False, None
        member = self.ledger.is_member(segment_id, self.contact)
        if segment.kind != DYNAMIC:
            return member, None
        return member, self.ledger.deadline(segment_id, self.contact)

    def explain(self, segment_id: str, t: int) -> Explanation:  # pragma: no cover - live only
        raise NotImplementedError("explanations are computed as of an instant, see engine.asof")


class ProjectedSegments:
    """Other segments' members and deadlines at the instant being applied, as projected."""

    def __init__(self, session: ProjectionSession, registry: Registry, t: int) -> None:
        self.session = session
        self.registry = registry
        self.t = t

    def answer(self, segment_id: str) -> Answer:
        """A referenced segment's members now, with their deadlines."""
        segment = self.registry.get(segment_id)
        if segment is None or not segment.active_at(self.t):
            return Answer(set())
        return Answer(
            self.session.member_set(segment_id),
            self.session.deadlines_of(segment_id),
            all_exist=segment.kind == DYNAMIC,
        )


# Deadlines foreseen between two looks at whether someone wants the projector: about a
# millisecond of work, so that a request waits no longer than SQLite's first retries.
FORESEE_STEP = 25


class Foresight(NamedTuple):
    """What a turn of Projector.foresee did: how many deadlines without a forecast it came
    across, and whether it has been through them all since anything was last applied."""

    found: int
    done: bool


class Projector:
    """Keeps the membership projection current with the log and with time."""

    def __init__(
        self,
        log: EventStore,
        projection: ProjectionStore,
        *,
        page_size: int = 2_000,
        deadline_batch: int = 10_000,
        deadline_slice: int = 100_000,
        history_cache: int = 100_000,
        forecasts: bool = True,
    ) -> None:
        self.log = log
        # Deadlines fired per transaction, about: a backlog after downtime (three quarters of
        # a million) commits in slices (about 10 s each here), so that a crash keeps what was
        # done and the write-ahead log can be copied back between them. Each commit writes
        # the b-tree pages it touched again: slices of 20,000 took 30% longer than one
        # transaction, of 100,000 no longer beyond the noise.
        self.deadline_slice = deadline_slice
        # Whether deadlines carry forecasts (see _evaluate); without, each is evaluated again.
        self.forecasts = forecasts
        self.projection = projection
        self.page_size = page_size
        self.deadline_batch = deadline_batch
        self.registry = Registry()
        self._registry_position = 0
        self._histories = Histories(log, history_cache)
        self._committed: tuple[int, int] | None = None
        self._reads: dict[str, Reads] = {}
        self._kinds: dict[Kinds, Kinds] = {}  # see Touched
        # Per segment and rule version (its position in the log), the value of every
        # brand-new contact the rule reads nothing of (None: not the same for all of them).
        self._blind: dict[tuple[str, int], bool | None] = {}
        # The transitions stamped with the instant being worked on, and whose of them were
        # read (None: everyone's; see _transitions_at).
        self._at: tuple[int, dict[tuple[str, str], TransitionRecord], set[str] | None] = (
            -1,
            {},
            None,
        )
        self._settled_until = 0
        self._ledger: Ledger | None = None
        # Where foresee() got to in the deadlines (None: from the first after now), and
        # whether it went through them all with nothing applied since.
        self._foresee_after: tuple[int, str, str] | None = None
        self._foreseen_all = False

    # ---- the loop ----

    def advance(
        self,
        now: int,
        until_position: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int | None:
        """Apply every new log entry and every deadline due by `now`; the next deadline after.

        `until_position` stops the log there (a replay that must match a live checkpoint).
        """
        while True:
            done, due = self.step(now, until_position, progress)
            if done:
                return due

    def step(
        self,
        now: int,
        until_position: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[bool, int | None]:
        """One transaction of `advance` (a page of the log, or a slice of time): whether
        everything is applied, and if so the next deadline after `now`."""
        if self._apply_page(until_position, progress):
            return False, None
        due = self.projection.next_deadline()
        if due is None or due > now:
            return True, due
        if until_position is None:
            # Promise the log first, so that no append can be recorded before `now` once
            # time up to `now` has been decided; then look again for what slipped in.
            self.log.raise_clock_floor(now)
            if self._apply_page(until_position, progress):
                return False, None
        self._in_session(lambda s: self._time_passes(s, now))
        return False, None

    @property
    def registry_position(self) -> int:
        """The position of the last definition the registry holds (-1: to be read again)."""
        return self._registry_position

    def refresh(self) -> None:
        """Bring the registry up to date with definitions another process applied."""
        if self.projection.definitions_position() != self._registry_position:
            definitions = self.projection.definitions()
            self.registry = Registry()
            for record in definitions:
                self.registry.apply(record)
            self._registry_position = definitions[-1].position if definitions else 0
            self._reads.clear()

    def _log_is_applied(self, until_position: int | None) -> bool:
        """A cheap look, without taking the writer's lock, for anything new in the log."""
        position = self.projection.checkpoint()[0]
        head = self.log.last_position() if until_position is None else until_position
        return position >= head

    def foresee(
        self, limit: int, window: int = 5_000, stop: Callable[[], bool] = lambda: False
    ) -> Foresight:
        """Work out ahead of time what up to `limit` deadlines set without a forecast will
        bring, among the next `window` deadlines in order of their instant; a few at a time,
        and no more once `stop()` says that someone else wants the projector.

        A new rule's deadlines come without one (it is evaluated set-wise), and so does the
        next after a foreseen one. Foreseen now, they too settle in bulk when they come,
        without reading the contacts' events then: 100,000 exits in one second took 4-6 s
        unforeseen. A forecast holds until an event bears on the contact, as one set with
        the deadline does. It reads the deadlines' own index: one of the unforeseen rows
        alone cost every new rule a sixth more time to write its deadlines.
        """
        if self._foreseen_all:
            return Foresight(0, done=True)
        return self._in_session(lambda s: self._foresee(s, limit, window, stop), foreseeing=True)

    def _foresee(
        self, session: ProjectionSession, limit: int, window: int, stop: Callable[[], bool]
    ) -> Foresight:
        # Past the projection's instant: what is due by then is the catch-up's.
        start = (session.instant + 1, "", "")
        rows, last = session.unforeseen(max(self._foresee_after or start, start), window, limit)
        for first in range(0, len(rows), FORESEE_STEP):
            if stop():
                if first:
                    segment_id, contact, _, due, _ = rows[first - 1]
                    assert due is not None
                    self._foresee_after = (due, segment_id, contact)
                return Foresight(first, done=False)
            self._foresee_step(session, rows[first : first + FORESEE_STEP])
        # Through them all (None): rest until something is applied.
        self._foresee_after, self._foreseen_all = last, last is None
        return Foresight(len(rows), done=last is None)

    def _foresee_step(self, session: ProjectionSession, rows: list[MembershipRow]) -> None:
        contacts = {row[1] for row in rows}
        self.ledger.load(contacts)
        histories = self._histories.read(contacts, session.position)
        for segment_id, contact, _, due, _ in rows:
            segment = self.registry.get(segment_id)
            assert due is not None
            if (
                segment is None
                or segment.current is None
                or segment.kind != DYNAMIC
                or not self._foreseeable(segment, contact, due)
            ):
                continue
            ctx = Context(histories[contact], LedgerSegments(self.ledger, self.registry, contact))
            forecast = Forecast(*evaluate_member(segment.current.node, ctx, due))
            self.ledger.set_deadline(segment_id, contact, due, forecast)
        self.ledger.flush()  # written as it goes: little is left to write once asked to stop

    def _in_session(
        self, work: Callable[[ProjectionSession], Any], foreseeing: bool = False
    ) -> Any:
        """Run work in one projection transaction; on failure forget every cache."""
        if not foreseeing:
            self._foreseen_all = False  # the work may set deadlines without a forecast
        try:
            # An idle-time job waits for no other writer.
            with _collector_paused(), self.projection.session(wait=not foreseeing) as session:
                if self._committed != (session.position, session.instant):
                    # Another process moved the projection: nothing cached here can be trusted.
                    self._histories.clear()
                    self.refresh()
                self._at = (-1, {}, None)
                # Transitions may already be stamped with instants up to here (and only those).
                self._settled_until = session.instant
                self._ledger = Ledger(session)
                result = work(session)
                self._ledger.flush()
                self._committed = (session.position, session.instant)
                return result
        except BaseException:
            self._committed = None
            self._registry_position = -1
            self._histories.clear()
            raise
        finally:
            self._ledger = None

    @property
    def ledger(self) -> Ledger:
        """The write-back cache of the current session."""
        assert self._ledger is not None, "only inside a projection session"
        return self._ledger

    def _time_passes(self, session: ProjectionSession, now: int) -> None:
        reached = self._deadlines(session, before=now + 1)
        session.advance(session.position, max(session.instant, now if reached is None else reached))

    def _apply_page(
        self, until_position: int | None, progress: Callable[[int], None] | None
    ) -> bool:
        """Apply the next page of the log, if there is one, in one transaction."""
        if self._log_is_applied(until_position):
            return False
        last = self._in_session(lambda s: self._apply_entries(s, until_position))
        if last is None:
            return False
        if progress is not None:
            progress(last)
        return True

    def _apply_entries(self, session: ProjectionSession, until_position: int | None) -> int | None:
        limit = self.page_size
        if until_position is not None:
            limit = min(limit, until_position - session.position)
            if limit <= 0:
                return None
        entries = list(self.log.read(after=session.position, limit=limit))
        for recorded_at, group in itertools.groupby(entries, key=lambda e: e.recorded_at):
            # Time first, then what was recorded: deadlines due at r itself fire before r's
            # entries, so a segment created at r sees the others as they are at r.
            reached = self._deadlines(session, before=recorded_at + 1)
            if reached is not None:
                # A slice of a long stretch of time: committed; r's entries come after the rest.
                session.advance(session.position, max(session.instant, reached))
                return session.position
            batch = list(group)
            self._apply_instant(session, recorded_at, batch)
            session.advance(batch[-1].position, max(session.instant, recorded_at))
        return entries[-1].position if entries else None

    # ---- one instant of the log ----

    def _apply_instant(
        self, session: ProjectionSession, r: int, entries: list[StoredEvent]
    ) -> None:
        kinds: dict[int, str] = {}
        redefined: dict[str, int] = {}
        for e in entries:
            if e.stream.startswith(SEGMENT_STREAM) and e.type in DEFINITION_TYPES:
                segment = self.registry.apply(e)
                session.save_definition(
                    DefinitionRecord(e.position, e.stream, e.type, e.recorded_at, dict(e.data))
                )
                self._registry_position = e.position
                self._reads.clear()
                kinds[e.position] = CAUSE_OF_DEFINITION[e.type]
                redefined[segment.id] = e.position
                if e.type == SEGMENT_ARCHIVED:
                    self._archive(session, segment, r, e.position)

        arrived: dict[str, list[Event]] = {}
        for e in entries:
            contact = contact_of(e.stream)
            if contact is not None:
                arrived.setdefault(contact, []).append(to_event(e))
                kinds[e.position] = "event"
        upto = entries[-1].position
        histories: dict[str, History] = {}
        if arrived:
            known = session.known_contacts(list(arrived))
            # Histories are read from the log as they stood before this instant's entries
            # (as cached ones do), and the entries added to them.
            before = entries[0].position - 1
            self._histories.prefetch(known, before)
            histories = {
                c: self._histories.extend(c, evs, before, c in known) for c, evs in arrived.items()
            }
            session.add_contacts(
                [
                    (c, min(e.occurred_at for e in evs), max(e.occurred_at for e in evs))
                    for c, evs in arrived.items()
                ]
            )
            session.assign_values(assignments(arrived))

        edits: list[tuple[Segment, str, bool, int]] = []  # (list, contact, added, position)
        for e in entries:
            if e.stream.startswith(SEGMENT_STREAM) and e.type in STATIC_EDIT_TYPES:
                segment = self.registry.get(e.stream[len(SEGMENT_STREAM) :])
                if segment is None or segment.kind == DYNAMIC or not segment.active_at(r):
                    continue
                kinds[e.position] = "list_edit"
                added = e.type == MEMBERS_ADDED
                edits += [(segment, c, added, e.position) for c in e.data.get("contacts", [])]
        self._transitions_at(session, r, (contact for _, contact, _, _ in edits))
        edited: dict[str, dict[str, int]] = {}  # contact -> static segment -> position
        for segment, contact, added, position in edits:
            self._settle(session, segment, contact, r, added, position, kinds)
            edited.setdefault(contact, {})[segment.id] = position

        touched = [
            Touched(
                c,
                histories.get(c) or self._histories.get(c, upto),
                arrived.get(c, []),
                r,
                self._kinds,
            )
            for c in sorted(arrived.keys() | edited.keys())
        ]
        for t in touched:
            t.edits = edited.get(t.contact, {})
        self.ledger.load(t.contact for t in touched)
        at_r = self._transitions_at(session, r, (t.contact for t in touched))
        for segment in self.registry.live():
            if segment.kind != DYNAMIC:
                continue
            reads = self._reads_of(segment)
            changed = [redefined[s] for s in reads.segments if s in redefined]
            if changed:
                self._evaluate_everyone(session, segment, r, max(changed), touched, upto, kinds)
                continue
            for t in touched:
                member = self.ledger.is_member(segment.id, t.contact)
                due = self.ledger.deadline(segment.id, t.contact)
                if (
                    (segment.id, t.contact) not in at_r
                    and (due is None or due > r)
                    and not t.needs(reads, member)
                    # A deadline the events bear on has moved, and what it brings with it:
                    # evaluated now, while the events are at hand, it keeps its forecast.
                    # Else it would fall due unforeseen, and a wave of those (engaged members,
                    # each read back from the log) took five times as long to settle.
                    and (due is None or not t.bears_on(reads))
                ):
                    continue
                cause = max(t.causes(reads), default=None)
                if (segment.id, t.contact) in at_r or not reads.blind_to(t):
                    self._evaluate(session, segment, t.contact, t.history, r, cause, kinds)
                    continue
                # New contacts the rule cannot see but for their existence (a page view, for
                # "has never purchased") all get the value the first of them got.
                assert segment.current is not None
                key = (segment.id, segment.current.position)
                blind = self._blind.get(key)
                if blind is None:
                    value, due = self._evaluate(
                        session, segment, t.contact, t.history, r, cause, kinds
                    )
                    self._blind.setdefault(key, value if due is None else None)
                elif blind:
                    self._settle(session, segment, t.contact, r, True, cause, kinds)

    def _evaluate_everyone(
        self,
        session: ProjectionSession,
        segment: Segment,
        r: int,
        position: int,
        touched: list[Touched],
        upto: int,
        kinds: dict[int, str],
    ) -> None:
        """A segment created or changed at r (or one it refers to): every contact, at r,
        set-wise; then the contacts whose membership changes are settled one by one."""
        version = segment.current
        assert version is not None
        self.ledger.forget()
        evaluator = SetEvaluator(
            self.log.population(),
            ContactsAt(session, r),
            upto,
            ProjectedSegments(session, self.registry, r),
            views=session,
        )
        answer = evaluator.members(version.ast, version.references)
        current = session.member_set(segment.id)
        reads = self._reads_of(segment)
        by_contact = {t.contact: t for t in touched}
        earlier = {c for s, c in self._transitions_at(session, r) if s == segment.id}
        changed = sorted((answer.members ^ current) | earlier)
        self.ledger.load_segment(segment.id, changed)  # one read, not one per contact
        for contact in changed:
            t = by_contact.get(contact)
            causes = t.causes(reads) if t else []
            value = contact in answer.members
            self._settle(session, segment, contact, r, value, max([position, *causes]), kinds)
        self.ledger.forget()
        session.replace_deadlines(segment.id, answer.bounds)

    def _archive(self, session: ProjectionSession, segment: Segment, r: int, position: int) -> None:
        """Every member leaves; a change already made at r now has the archive as its cause."""
        self.ledger.forget()
        earlier = {c for s, c in self._transitions_at(session, r) if s == segment.id}
        leaving = sorted(session.member_set(segment.id) | earlier)
        self.ledger.load_segment(segment.id, leaving)
        for contact in leaving:
            self._settle(session, segment, contact, r, False, position, {position: "archived"})
        self.ledger.forget()
        session.clear_deadlines(segment.id)

    # ---- deadlines ----

    def _deadlines(self, session: ProjectionSession, before: int) -> int | None:
        """Process the deadlines due before an instant, in order of due instant; after about
        `deadline_slice` of them, stop at the end of an instant and return it (None: none due
        is left).

        Deadlines are read in batches; a deadline set while a batch is worked through that
        falls before the rest of the batch sends us back to read again, so order holds. One
        set at t always falls after t, so everything due by the instant returned is done.
        """
        fired = 0
        while True:
            self.ledger.flush()
            rows = session.due(before, self.deadline_batch)
            if not rows:
                return None
            if len(rows) == self.deadline_batch and rows[0][3] != rows[-1][3]:
                last = rows[-1][3]
                rows = [row for row in rows if row[3] != last]
            elif len(rows) == self.deadline_batch:
                rows = session.due(rows[0][3] + 1, 1 << 62)
            # A deadline with a forecast needs neither the contact's events nor its other rows.
            unforeseen = {row[1] for row in rows if row[4] is None or not self.forecasts}
            self.ledger.load(unforeseen)
            self._histories.prefetch(unforeseen, session.position)
            self.ledger.earliest_new_due = None
            for due, group in itertools.groupby(rows, key=itemgetter(3)):
                new = self.ledger.earliest_new_due
                if new is not None and new <= due:
                    break  # a deadline just set comes first: read the batch again
                at_due = list(group)
                self._fire(session, due, at_due)
                fired += len(at_due)
                if fired >= self.deadline_slice:
                    self.ledger.flush()
                    return due if session.due(before, 1) else None

    def _fire(self, session: ProjectionSession, t: int, rows: list[MembershipRow]) -> None:
        at_t = self._transitions_at(session, t, (row[1] for row in rows))
        by_segment: dict[str, list[MembershipRow]] = {}
        for row in rows:
            by_segment.setdefault(row[0], []).append(row)
        for segment in self.registry.live():
            foreseen: list[MembershipRow] = []
            rest: list[MembershipRow] = []
            for row in by_segment.get(segment.id, ()):
                if row[4] is not None and self.forecasts and (segment.id, row[1]) not in at_t:
                    foreseen.append(row)
                else:
                    rest.append(row)
            # Contacts are independent within a segment: what was foreseen, in bulk first.
            for record in self.ledger.settle_foreseen(segment.id, segment.version, t, foreseen):
                at_t[(segment.id, record.contact_id)] = record
            for _, contact, _, _, forecast in rest:
                if forecast is not None and self.forecasts:
                    # A change at t already: _settle nets it out.
                    self._settle(session, segment, contact, t, forecast.then_member, None, {})
                    self.ledger.set_deadline(segment.id, contact, forecast.then_due)
                    continue
                history = self._histories.get(contact, session.position)
                self._evaluate(session, segment, contact, history, t, None, {})

    # ---- one contact, one segment, one instant ----

    def _evaluate(
        self,
        session: ProjectionSession,
        segment: Segment,
        contact: str,
        history: History,
        t: int,
        cause: int | None,
        kinds: dict[int, str],
    ) -> Outcome:
        version = segment.current
        assert version is not None
        ctx = Context(history, LedgerSegments(self.ledger, self.registry, contact))
        value, due = evaluate_member(version.node, ctx, t)
        self._settle(session, segment, contact, t, value, cause, kinds)
        forecast = None
        if due is not None and self.forecasts and self._foreseeable(segment, contact, due):
            # While the history is at hand, what the deadline brings: unless an entry bears on
            # the contact first, it is then settled without reading the history again.
            forecast = Forecast(*evaluate_member(version.node, ctx, due))
        self.ledger.set_deadline(segment.id, contact, due, forecast)
        return value, due

    def _foreseeable(self, segment: Segment, contact: str, due: int) -> bool:
        """Whether the rule's value at its deadline can be worked out now.

        Not if a segment it refers to changes then too: it is worked out first, at that very
        instant (never before: a rule's deadline comes no later than theirs). Anything else
        that could change them first reaches this rule as well, and drops the forecast.
        """
        for other in self._reads_of(segment).segments:
            if other != segment.id:
                their = self.ledger.deadline(other, contact)
                if their is not None and their <= due:
                    return False
        return True

    def _settle(
        self,
        session: ProjectionSession,
        segment: Segment,
        contact: str,
        t: int,
        value: bool,
        cause: int | None,
        kinds: dict[int, str],
    ) -> None:
        """Make membership at t equal `value`, netting out changes within the same instant."""
        at_t = self._transitions_at(session, t, (contact,))
        key = (segment.id, contact)
        earlier = at_t.get(key)
        member = self.ledger.is_member(segment.id, contact)
        if value == member:
            if earlier is not None and cause is not None and (earlier.cause.position or 0) < cause:
                new_cause = Cause(kinds[cause], cause)
                self.ledger.flush()
                session.revise_transition(earlier.id, new_cause, segment.version)  # type: ignore[arg-type]
                at_t[key] = earlier._replace(cause=new_cause, rule_version=segment.version)
            return
        if earlier is not None:
            # The instant took back its own change: the contact is where it was before t.
            self.ledger.flush()
            session.delete_transition(earlier.id)  # type: ignore[arg-type]
            del at_t[key]
            before = session.last_transition(segment.id, contact) if value else None
            self.ledger.set_member(
                segment.id, contact, (before.at if before else t) if value else None
            )
            return
        at_t[key] = self.ledger.add_transition(
            segment.id,
            contact,
            ENTERED if value else EXITED,
            t,
            segment.version,
            Cause(kinds[cause], cause) if cause is not None else BY_TIME,
        )
        self.ledger.set_member(segment.id, contact, t if value else None)

    def _transitions_at(
        self, session: ProjectionSession, t: int, contacts: Iterable[str] | None = None
    ) -> dict[tuple[str, str], TransitionRecord]:
        """The transitions stamped t, read for some contacts (None: all) if not yet."""
        if self._at[0] != t:
            # Time only moves forward within a session: past what it started from, nothing is
            # stamped t yet and everyone's transitions at t are known (none).
            self._at = (t, {}, None if t > self._settled_until else set())
        _, found, read = self._at
        if read is None:
            return found
        # Only the contacts asked about: batches recorded within one millisecond would
        # otherwise read each other's transitions again and again.
        missing = None if contacts is None else [c for c in set(contacts) if c not in read]
        if missing is None or missing:
            self.ledger.flush_transitions()
            for x in session.transitions_at(t, missing):
                found.setdefault((x.segment_id, x.contact_id), x)
            if missing is None:
                self._at = (t, found, None)
            else:
                read.update(missing)
        return found

    def _reads_of(self, segment: Segment) -> Reads:
        reads = self._reads.get(segment.id)
        if reads is None:
            closure = self.registry.closure(segment.id)
            types: set[str | None] = set()
            props: set[str] = set()
            ways: dict[str | None, int] = {}
            for s in closure:
                if s.current is None:
                    continue
                types |= s.current.event_types
                props |= s.current.properties
                # Another segment's rule can move this one either way.
                own = (
                    directions(s.current.ast)
                    if s is segment
                    else dict.fromkeys(s.current.event_types, EITHER)
                )
                for event_type, way in own.items():
                    ways[event_type] = way if ways.get(event_type, way) == way else EITHER
            reads = Reads(
                frozenset(types), frozenset(props), frozenset(s.id for s in closure), ways
            )
            self._reads[segment.id] = reads
        return reads
