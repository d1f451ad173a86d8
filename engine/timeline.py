"""Rebuilding the membership projection set-wise, by intervals of time.

The projector (engine/projector.py) defines membership as a step function of time,

    member(t) = the segment is live at t, the contact exists at t, and the rule version in
                force at t holds over the contact's events recorded up to t,

and applies the log one instant at a time. A rebuild need not follow it step by step: it
reads the log once into columns, computes every leaf of every rule as a step function for
all contacts at once (engine/timeline_leaves.py), combines them with and/or/not on a common
grid of instants, splices rule versions by their time ranges, and takes the change points as
transitions, with the causes and rule versions the projector gives them
(engine/timeline_causes.py). Referenced segments are computed first, so `in segment` reads a
finished step function. The results are written in bulk, in one transaction.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

from engine.history import CONTACT_UPDATED
from engine.segments import DYNAMIC, RuleVersion, Segment
from engine.timeline_causes import Causes
from engine.timeline_defs import Definitions, read_definitions
from engine.timeline_leaves import Leaves, leaf_key
from engine.timeline_log import MISSING, Fields, Log, read_log
from engine.timeline_steps import INT, Axis, Steps, first_of_runs, grid, last_of_runs
from eventstore.interface import EventStore
from eventstore.projection import (
    ENTERED,
    EXITED,
    DefinitionRecord,
    Forecast,
    MembershipRow,
    ProjectionSession,
    ProjectionStore,
    TransitionRow,
)
from grammar import ast as a

Progress = Callable[[int], None]
KIND = {True: ENTERED, False: EXITED}
LEAVES = (*a.EVENT_CONDITIONS, *a.PROPERTY_CONDITIONS)
WRITE_CHUNK = 200_000


def replay_timeline(
    log: EventStore,
    projection: ProjectionStore,
    now: int,
    progress: Progress | None = None,
    *,
    only_if_empty: bool = False,
) -> int | None:
    """Drop the projection and rebuild it from the whole log, as of `now`; the next deadline.

    `only_if_empty`: build an empty projection, and write nothing if another process has
    started it meanwhile (checked under the writer's lock).
    """
    queries = log.population()
    last = log.last_position()
    # The contact view (every property's latest value, for set-wise questions) is built
    # meanwhile, where the store can.
    with projection.contact_view_from_log(last) as contact_view:
        data = read_log(queries, last)
        definitions = read_definitions(data.segment_entries)
        timeline = Timeline(data, definitions, Fields(queries, data.events, last), now)
        if data.last_recorded is not None and now > data.last_recorded:
            # Time up to `now` is decided here: no append may be recorded before it from now on.
            log.raise_clock_floor(now)
        with projection.session() as session:
            if only_if_empty and session.position:
                return None
            # In the transaction that writes the new one: readers (the service beside a
            # `flask replay`) see the old projection until then, and an interrupted replay
            # leaves it as it was.
            session.clear()
            next_deadline = timeline.write(session)
            if contact_view is None:
                session.assign_values(queries.latest_assignments(last))
            else:
                session.copy_contact_view(contact_view)
    if progress is not None:
        progress(last)
    return next_deadline


class Timeline:
    """Membership of every contact in every segment over all time, from the log's columns."""

    def __init__(self, log: Log, definitions: Definitions, fields: Fields, now: int) -> None:
        self.log = log
        self.definitions = definitions
        self.registry = definitions.registry
        events = log.events
        self.contacts = list(events.contacts)
        index = {c: i for i, c in enumerate(self.contacts)}
        for edit in definitions.edits:
            for name in edit.contacts:
                if name not in index:  # a contact named in a static list only
                    index[name] = len(self.contacts)
                    self.contacts.append(name)
        self.index = index
        earliest = int(log.instants[0]) if len(log.instants) else now
        self.axis = Axis.for_log(len(self.contacts), earliest)
        self.last = log.last_recorded
        self.horizon = now if self.last is None else max(now, self.last)
        self.now = now
        self.seen_from = self._seen_from()
        with_events = np.flatnonzero(self.seen_from < np.iinfo(INT).max)
        self.exists = Steps(
            self.axis.key(with_events, self.seen_from[with_events]),
            np.ones(len(with_events), bool),
            False,
        )
        properties = sorted(
            {p for s in self.registry.segments.values() for v in s.versions for p in v.properties}
        )
        self.leaves = Leaves(self.axis, events, fields, properties)
        # Leaves shared by several rules are computed once, and dropped after their last use.
        nodes = [
            node
            for s in self.registry.segments.values()
            for v in s.versions
            for node in a.walk(v.ast)
            if isinstance(node, LEAVES)
        ]
        self.leaf_uses = Counter(map(leaf_key, nodes))
        present = self._present(fields, properties)
        self.causes = Causes(self.axis, log, definitions, present, index, self.seen_from)
        # Every property leaf now, from the one read of the properties' values, which is then
        # let go: the step functions are a fraction of the texts (the replay's peak memory).
        for node in nodes:
            if isinstance(node, a.PROPERTY_CONDITIONS):
                self.leaves.steps(node)
        fields.forget(CONTACT_UPDATED)
        self.memberships: dict[str, Steps] = {}
        self.order = definitions.order()  # first, so that a log it cannot order fails early
        # The rank of each contact id in text order: rows keyed by id are written in it. Not
        # through a numpy text array: its width is the longest id's (one id of 200 characters
        # among 500,000 made it 400 MB).
        by_name = sorted(range(len(self.contacts)), key=self.contacts.__getitem__)
        self.name_rank = np.empty(len(self.contacts), INT)
        self.name_rank[by_name] = np.arange(len(self.contacts))

    # ---- membership ----

    def membership(self, segment_id: str) -> Steps:
        """A segment's membership of every contact over all time (only its change points)."""
        found = self.memberships.get(segment_id)
        if found is None:
            segment = self.registry.get(segment_id)
            if segment is None:
                found = Steps.constant(False)
            elif segment.kind == DYNAMIC:
                found = self._dynamic(segment)
            else:
                found = self._static(segment)
            self.memberships[segment_id] = found
        return found

    def _dynamic(self, segment: Segment) -> Steps:
        """Each rule version over the time it was in force, the segment live."""
        parts: list[tuple[int, int | None, Steps]] = []
        for i, version in enumerate(segment.versions):
            start = version.since
            end = segment.versions[i + 1].since if i + 1 < len(segment.versions) else None
            if segment.archived_at is not None and (end is None or end > segment.archived_at):
                end = segment.archived_at
            if end is None or end > start:
                parts.append((start, end, self._rule(version)))
        return self._splice(parts)

    def _rule(self, version: RuleVersion) -> Steps:
        """`contact exists and rule holds`, on the instants where any of its leaves changes."""
        leaves: dict[str, Steps] = {}  # by leaf_key
        for node in a.walk(version.ast):
            if isinstance(node, a.InSegment):
                segment = version.references.get(node.segment, node.segment)
                leaves[leaf_key(node)] = self.membership(segment)
            elif isinstance(node, LEAVES):
                key = leaf_key(node)
                leaves[key] = self.leaves.steps(node)
                self.leaf_uses[key] -= 1
                if not self.leaf_uses[key]:
                    self.leaves.forget(node)
        instants = grid([s.keys for s in leaves.values()] + [self.exists.keys])
        vals = _evaluate(version.ast, instants, leaves, self.axis)
        vals &= self.exists.at(self.axis, instants)
        return Steps(instants, vals, False).changes(self.axis)

    def _splice(self, parts: list[tuple[int, int | None, Steps]]) -> Steps:
        if not parts:
            return Steps.constant(False)
        start, end, only = parts[0]
        if len(parts) == 1 and end is None and not (self.seen_from < start).any():
            return only  # in force over the whole life of every contact
        # Where versions meet, a contact that exists already may change without a key.
        bounds = {s for s, _, _ in parts} | {e for _, e, _ in parts if e is not None}
        extra = []
        for instant in sorted(bounds):
            existing = np.flatnonzero(self.seen_from < instant)
            extra.append(self.axis.key(existing, instant))
        instants = grid([p.keys for _, _, p in parts] + extra)
        t = self.axis.time(instants)
        vals = np.zeros(len(instants), bool)
        for start, end, steps in parts:
            inside = (t >= start) if end is None else (t >= start) & (t < end)
            vals[inside] = steps.at(self.axis, instants[inside])
        return Steps(instants, vals, False).changes(self.axis)

    def _static(self, segment: Segment) -> Steps:
        """A static list: each contact's last edit at each instant decides, until archived."""
        contact: list[int] = []
        instant: list[int] = []
        add: list[bool] = []
        for edit in self.definitions.edits:
            if edit.segment_id == segment.id:
                for name in edit.contacts:
                    contact.append(self.index[name])
                    instant.append(edit.recorded_at)
                    add.append(edit.add)
        keys = self.axis.key(np.array(contact, INT), np.array(instant, INT))
        order = np.argsort(keys, kind="stable")  # edits in log order within an instant
        keys, vals = keys[order], np.array(add, bool)[order]
        ends = last_of_runs(keys)
        steps = Steps(keys[ends], vals[ends], False)
        if segment.archived_at is not None:
            named = np.unique(self.axis.contact(steps.keys))
            instants = grid([steps.keys, self.axis.key(named, segment.archived_at)])
            vals = steps.at(self.axis, instants) & (self.axis.time(instants) < segment.archived_at)
            steps = Steps(instants, vals, False)
        return steps.changes(self.axis)

    # ---- writing ----

    def write(self, session: ProjectionSession) -> int | None:
        """Write definitions, contacts, transitions, members, deadlines and the checkpoint."""
        for e in self.definitions.entries:
            session.save_definition(
                DefinitionRecord(e.position, e.stream, e.type, e.recorded_at, dict(e.data))
            )
        next_deadline: int | None = None
        latest: list[TransitionRow] = []
        with session.bulk():
            session.add_contacts(self._contact_spans())
            remaining = self._last_uses()
            for segment_id in self.order:
                due = self._write_segment(session, segment_id, latest)
                if due is not None:
                    next_deadline = due if next_deadline is None else min(next_deadline, due)
                for done in remaining.pop(segment_id, ()):
                    self.memberships.pop(done, None)  # nothing later refers to it
            # Last, as the projector would have: the transitions of the latest instant are
            # the newest (ProjectionSession.transitions_at counts on it).
            session.insert_transitions(latest)
        if self.last is not None:
            session.advance(self.log.last_position, self.horizon)
        return next_deadline

    def _last_uses(self) -> dict[str, list[str]]:
        """Per segment id, the segments whose step functions may be dropped after it."""
        last_user = {s: s for s in self.order}
        for s in self.order:
            segment = self.registry.get(s)
            for version in segment.versions if segment else ():
                for ref in version.references.values():
                    last_user[ref] = s
        found: dict[str, list[str]] = {}
        for s, user in last_user.items():
            found.setdefault(user, []).append(s)
        return found

    def _write_segment(
        self, session: ProjectionSession, segment_id: str, latest: list[TransitionRow]
    ) -> int | None:
        """A segment's transitions (those stamped with the horizon kept in `latest`), members
        and deadlines; its next deadline."""
        segment = self.registry.get(segment_id)
        assert segment is not None
        steps = self.membership(segment_id)
        c, t = self.axis.contact(steps.keys), self.axis.time(steps.keys)
        applied = self._applied(segment, c, t)
        kinds, positions = self.causes.of(segment, steps.keys[applied])
        c_done, t_done, entered = c[applied], t[applied], steps.vals[applied]
        versions = self._versions(segment, t_done)
        columns = (segment.id, c_done, t_done, entered, versions, kinds, positions)
        order = np.lexsort((c_done, t_done))  # in order of instant, as the projector writes
        now = np.searchsorted(t_done[order], self.horizon)
        session.insert_transitions(self._transition_rows(*columns, order[:now]))
        latest.extend(self._transition_rows(*columns, order[now:]))
        # A member since its last change, if that change was an entry.
        last = last_of_runs(c_done)
        last = last[entered[last]]
        since = dict(zip(c_done[last].tolist(), t_done[last].tolist(), strict=True))
        if segment.kind != DYNAMIC or segment.archived_at is not None:
            session.write_memberships(self._rows(segment.id, since, {}))
            return None
        # The next change after the instant processed up to: exact, so a valid deadline.
        c_next, t_next, v_next = c[~applied], t[~applied], steps.vals[~applied]
        first = first_of_runs(c_next)
        # What it brings is known exactly too: the value after it, and the change after that.
        after = first + 1
        has_after = np.zeros(len(first), bool)
        inside = after < len(c_next)
        has_after[inside] = c_next[after[inside]] == c_next[first[inside]]
        then_due = np.where(has_after, t_next[np.minimum(after, len(t_next) - 1)], -1)
        deadlines = {
            contact: (due, Forecast(member, then if then >= 0 else None))
            for contact, due, member, then in zip(
                c_next[first].tolist(),
                t_next[first].tolist(),
                v_next[first].tolist(),
                then_due.tolist(),
                strict=True,
            )
        }
        session.write_memberships(self._rows(segment.id, since, deadlines))
        return int(t_next[first].min()) if len(first) else None

    def _rows(
        self,
        segment_id: str,
        since: dict[int, int],
        deadlines: dict[int, tuple[int, Forecast]],
    ) -> list[MembershipRow]:
        """A segment's rows from its members (contact -> since) and deadlines (contact ->
        due and forecast), in key order so that inserts append."""
        keys = np.fromiter(since.keys() | deadlines.keys(), INT)
        names, none = self.contacts, (None, None)
        return [
            (segment_id, names[c], since.get(c), *deadlines.get(c, none))
            for c in keys[np.argsort(self.name_rank[keys])].tolist()
        ]

    def _applied(self, segment: Segment, c: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Change points the projector has applied by the time it reaches `now`: every one up
        to the later of `now` and the last entry (an entry recorded at r means time reached
        r, and deadlines due at r fire before r's entries)."""
        return t <= self.horizon

    @staticmethod
    def _versions(segment: Segment, t: np.ndarray) -> np.ndarray:
        if segment.kind != DYNAMIC:
            return np.ones(len(t), INT)
        since = np.array([v.since for v in segment.versions], INT)
        return np.searchsorted(since, t, side="right")

    def _transition_rows(
        self,
        segment_id: str,
        c: np.ndarray,
        t: np.ndarray,
        entered: np.ndarray,
        versions: np.ndarray,
        kinds: list[str],
        positions: np.ndarray,
        order: np.ndarray,
    ) -> Iterator[TransitionRow]:
        """The rows at the indexes `order`, in that order; built column by column."""
        names = self.contacts
        for lo in range(0, len(order), WRITE_CHUNK):
            chunk = order[lo : lo + WRITE_CHUNK]
            cause_positions = np.where(positions[chunk] > 0, positions[chunk], None)
            yield from zip(
                itertools.repeat(segment_id, len(chunk)),
                map(names.__getitem__, c[chunk].tolist()),
                map(KIND.__getitem__, entered[chunk].tolist()),
                t[chunk].tolist(),
                versions[chunk].tolist(),
                map(kinds.__getitem__, chunk.tolist()),
                cause_positions.tolist(),
                strict=True,
            )

    def _contact_spans(self) -> list[tuple[str, int, int]]:
        """Each contact with events, its earliest and latest occurred_at, in order of id."""
        e = self.log.events
        if not len(e.contact):
            return []
        starts = first_of_runs(e.contact)
        c = e.contact[starts]
        firsts = np.minimum.reduceat(e.occurred, starts)
        lasts = np.maximum.reduceat(e.occurred, starts)
        order = np.argsort(self.name_rank[c])
        names = self.contacts
        return list(
            zip(
                map(names.__getitem__, c[order].tolist()),
                firsts[order].tolist(),
                lasts[order].tolist(),
                strict=True,
            )
        )

    # ---- helpers ----

    def _seen_from(self) -> np.ndarray:
        """Per contact, the first instant it exists (an event both dated and known)."""
        e = self.log.events
        seen = np.full(len(self.contacts), np.iinfo(INT).max, INT)
        if len(e.contact):
            starts = first_of_runs(e.contact)
            seen[e.contact[starts]] = np.minimum.reduceat(e.visible, starts)
        return seen

    @staticmethod
    def _present(fields: Fields, properties: list[str]) -> dict[str, np.ndarray]:
        """Per contact property, the rows of the contact_updated events that set it."""
        if not properties:
            return {}
        found = fields.read(CONTACT_UPDATED, properties)
        return {p: found.rows[found.ids[p] != MISSING] for p in properties}


def _evaluate(
    node: a.Condition, instants: np.ndarray, leaves: dict[str, Steps], axis: Axis
) -> np.ndarray:
    """A rule's value at every key of a grid that holds every change of its leaves."""
    if isinstance(node, a.Not):
        return ~_evaluate(node.item, instants, leaves, axis)
    if isinstance(node, a.And):
        return np.logical_and.reduce([_evaluate(i, instants, leaves, axis) for i in node.items])
    if isinstance(node, a.Or):
        return np.logical_or.reduce([_evaluate(i, instants, leaves, axis) for i in node.items])
    return leaves[leaf_key(node)].at(axis, instants)
