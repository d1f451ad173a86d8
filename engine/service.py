"""The use cases the API offers, over the log, the projection and an injected clock."""

from __future__ import annotations

import bisect
import contextlib
import functools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.asof import AsOfSegments, AsOfSets
from engine.errors import (
    Conflict,
    InvalidEvents,
    InvalidInput,
    InvalidRule,
    NotFound,
    NotYetApplied,
    VersionMismatch,
)
from engine.evaluate import Explanation
from engine.histories import CONTACT_STREAM, to_event
from engine.history import History
from engine.memory import give_back_freed_memory
from engine.projector import Foresight, Projector
from engine.segments import (
    DEFINITION_TYPES,
    DYNAMIC,
    MEMBERS_ADDED,
    MEMBERS_REMOVED,
    SEGMENT_ARCHIVED,
    SEGMENT_DEFINED,
    SEGMENT_RULE_CHANGED,
    SEGMENT_STREAM,
    STATIC,
    CycleError,
    Registry,
    Segment,
    dependency_order,
    segment_stream,
    slugify,
)
from engine.timeline import replay_timeline
from engine.timeline_defs import Unsupported
from eventstore.interface import (
    ConcurrencyError,
    EventStore,
    NewEvent,
    Receipt,
    StoreBusy,
    StoredEvent,
    Unchanged,
)
from eventstore.projection import ProjectionStore, TransitionRecord
from grammar import RuleError, format_rule, parse, to_json
from grammar import ast as a
from grammar.errors import Problem

DAY_MS = 86_400_000
# An empty projection over a log at least this long is rebuilt by the set-wise replay rather
# than by applying the entries one instant at a time (a first start on an imported log, or a
# projection of an older shape dropped by the store).
REBUILD_FROM = 10_000
ANSWERS_KEPT = 2  # as-of member lists kept for paging (each up to one id per contact)
MAX_NAME = 200


@dataclass(frozen=True)
class ContactEvent:
    """An event as a producer posts it; `event_id` and `occurred_at` are optional."""

    contact_id: str
    type: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    occurred_at: int | None = None


@dataclass(frozen=True)
class CheckedRule:
    """A rule that parsed and passed every check: its AST, canonical text and references."""

    ast: a.Condition
    text: str
    references: dict[str, str]


@dataclass(frozen=True)
class Preview:
    """What a rule would hold at an instant: its canonical text, a count and a sample."""

    rule: str
    at: int
    count: int
    sample: list[str]


@dataclass(frozen=True)
class Failure:
    """Catching up has failed since `since`, the last time with `error`."""

    since: int
    error: str


@dataclass(frozen=True)
class Member:
    """A contact in a segment; `since` is known for current membership only."""

    contact_id: str
    since: int | None = None


# How often a wait for the lock looks whether a backlog began meanwhile.
_WAIT_STEP_MS = 50


class Service:
    """Producers, marketers and auditors all come through here."""

    def __init__(
        self,
        log: EventStore,
        projection: ProjectionStore,
        clock: Callable[[], int],
        *,
        max_future_ms: int = DAY_MS,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        rebuild_from: int = REBUILD_FROM,
        wait_ms: int = 30_000,
        backlog_after_ms: int = 1_000,
    ) -> None:
        self.log = log
        self.rebuild_from = rebuild_from
        # How long a write waits for another thread's catch-up (a backlog can take a minute),
        # as it waits for another process's writer: then it is told the database is busy.
        self.wait_ms = wait_ms
        self.projection = projection
        self.clock = clock
        self.max_future_ms = max_future_ms
        self.new_id = new_id
        self.projector = Projector(log, projection)
        # The projector keeps caches; one thread at a time may move it.
        self._lock = threading.RLock()
        # How many threads want the writer now (requests in flight, catch-ups, appends):
        # idle-time work stops for them at its next step.
        self._wanted = 0
        self._counting = threading.Lock()
        self._foreseeing = threading.Lock()  # held through a turn of foresee()
        self._registry: tuple[int, Registry] | None = None  # a copy, and its position
        self._started = False
        # Since when catching up fails (None: the last catch-up succeeded), for /healthz.
        self.failing: Failure | None = None
        # A catch-up in turns that has run this long is a backlog (see catch_up_in_turns).
        self.backlog_after_ms = backlog_after_ms
        self._turns_since: int | None = None  # when the catch-up in turns under way began
        # (segment, T) -> the log position it was answered at, and the members
        self._answers: OrderedDict[tuple[str, int], tuple[int, list[str]]] = OrderedDict()

    def catch_up(self) -> int | None:
        """Apply what the log and time have brought; returns the next deadline."""
        with self._wanting(), self._lock:
            return self._applying(lambda: self.projector.advance(self.clock()))

    def catch_up_in_turns(self) -> int | None:
        """The same, a transaction at a time, with other threads' turn at the lock between
        them. Once it has run backlog_after_ms (a backlog of deadlines after downtime takes
        a minute), requests answer at once instead of waiting: events are stored and
        answered 202, reads of membership now are busy (503)."""
        self._turns_since = self.clock()
        try:
            while True:
                now = self.clock()
                with self._wanting(), self._lock:
                    done, due = self._applying(functools.partial(self.projector.step, now))
                    if done:
                        return due
        finally:
            self._turns_since = None

    def foresee(self, limit: int = 1_000) -> Foresight:
        """Forecasts for up to `limit` deadlines set without one (see Projector.foresee), if
        no one else is at work, and until someone wants the writer."""
        if self._wanted or self._turns_since is not None:
            return Foresight(0, done=False)  # a request or a catch-up comes first
        if not self._lock.acquire(blocking=False):
            return Foresight(0, done=False)
        try:
            with self._foreseeing:
                return self.projector.foresee(limit, stop=lambda: self._wanted > 0)
        except StoreBusy:
            return Foresight(0, done=False)  # another process is writing: next time
        finally:
            self._lock.release()

    @property
    def backlog_since(self) -> int | None:
        """When the catch-up in turns under way began, once it has run backlog_after_ms (also
        in the middle of a turn: a slice takes seconds); else None."""
        since = self._turns_since
        if since is None or self.clock() - since < self.backlog_after_ms:
            return None
        return since

    def _applying(self, work: Callable[[], Any]) -> Any:
        """Run a catch-up's work under the lock: the first one builds an empty projection
        set-wise; failures are kept for /healthz."""
        try:
            if not self._started:
                self._started = True
                if (
                    self.projection.checkpoint()[0] == 0
                    and self.log.last_position() >= self.rebuild_from
                ):
                    self._rebuild()
            self._copy_registry()  # what readers get while this catch-up runs
            result = work()
        except StoreBusy:
            raise  # another writer's turn: nothing is wrong
        except Exception as exc:
            since = self.clock() if self.failing is None else self.failing.since
            self.failing = Failure(since, repr(exc))
            raise
        self.failing = None
        return result

    @property
    def registry(self) -> Registry:
        """Every segment definition, as a copy of the projector's: current, or while another
        thread is catching up (a backlog of deadlines can take a minute), as it was before."""
        kept = self._registry
        if kept is not None and not self._lock.acquire(blocking=False):
            return kept[1]
        if kept is None:
            self._lock.acquire()
        try:
            return self._copy_registry()
        finally:
            self._lock.release()

    def _copy_registry(self) -> Registry:
        """The current definitions, copied again if they changed; the caller holds the lock."""
        self.projector.refresh()
        position = self.projector.registry_position
        kept = self._registry
        if kept is None or kept[0] != position:
            kept = self._registry = (position, self.projector.registry.copy())
        return kept[1]

    # ---- producers ----

    def too_far_ahead(self, occurred: Sequence[int | None]) -> list[tuple[int, str, str]]:
        """(index, "occurred_at", why) for each instant further in the future than taken."""
        latest = self.clock() + self.max_future_ms
        ahead = f"lies too far in the future (more than {self.max_future_ms // 3_600_000} hours)"
        return [(i, "occurred_at", ahead) for i, t in enumerate(occurred) if t and t > latest]

    def ingest(self, events: Sequence[ContactEvent]) -> list[Receipt]:
        """Store a batch of contact events (all or none), then bring membership up to date."""
        refused = self.too_far_ahead([e.occurred_at for e in events])
        if refused:
            raise InvalidEvents(refused)
        new = []
        for e in events:
            new.append(
                NewEvent(
                    e.event_id or self.new_id(),
                    CONTACT_STREAM + e.contact_id,
                    e.type,
                    dict(e.properties),
                    e.occurred_at,
                )
            )
        with self._wanting():
            with self._foreseeing:
                pass  # a turn of foresee() under way stops at its next step: wait for that
            receipts = self.log.append(new)
        self._apply_appended(receipts)
        return receipts

    # ---- rules and segments ----

    def check_rule(self, text: str, segment_id: str | None = None) -> CheckedRule:
        """Parse and check a rule: syntax, meaning, known segments, no cycle."""
        try:
            rule = parse(text)
        except RuleError as exc:
            raise InvalidRule(exc.problems) from exc
        registry = self.registry
        references: dict[str, str] = {}
        problems = []
        for node in a.walk(rule):
            if isinstance(node, a.InSegment):
                found = registry.find(node.segment)
                if found is None:
                    problems.append(_problem(node, f'there is no segment "{node.segment}"'))
                elif found.archived_at is not None:
                    problems.append(_problem(node, f'the segment "{node.segment}" is archived'))
                else:
                    references[node.segment] = found.id
        if not problems and segment_id is not None:
            graph = {s.id: s.references() for s in registry.segments.values()}
            graph[segment_id] = frozenset(references.values())
            try:
                dependency_order(graph)
            except CycleError as exc:
                names = " -> ".join(exc.cycle)
                problems.append(
                    Problem(1, 1, f"segments would refer to each other in a cycle: {names}")
                )
        if problems:
            raise InvalidRule(problems)
        return CheckedRule(rule, format_rule(rule), references)

    def define_segment(
        self,
        name: str,
        rule: str | None = None,
        kind: str = DYNAMIC,
        description: str | None = None,
    ) -> Segment:
        """Create a dynamic segment (with a rule) or a static list (without)."""
        name = name.strip()
        segment_id = slugify(name)
        if not segment_id or len(name) > MAX_NAME:
            raise InvalidInput(
                f"a segment name needs letters or digits and at most {MAX_NAME} characters",
                field="name",
            )
        if len(segment_id) > MAX_NAME:  # "ﷺ" is 18 letters once its accents are dropped
            raise InvalidInput(
                f'the name makes an id of {len(segment_id)} characters ("{segment_id[:20]}...");'
                f" at most {MAX_NAME}",
                field="name",
            )
        if kind not in (DYNAMIC, STATIC):
            raise InvalidInput('kind is "dynamic" or "static"', field="kind")
        if kind == DYNAMIC and rule is None:
            raise InvalidInput("a dynamic segment needs a rule", field="rule")
        if kind == STATIC and rule is not None:
            raise InvalidInput("a static list has no rule", field="rule")
        with self._defining() as seen:
            taken = self.registry.get(segment_id)
            if taken is not None:
                why = f'a segment with the id "{segment_id}" exists already'
                if taken.archived_at is not None:
                    why += (
                        " (archived: the log keeps its history under that id; choose another name)"
                    )
                raise Conflict(why, field="name", id=segment_id)
            data: dict[str, Any] = {"name": name, "kind": kind, "description": description}
            if rule is not None:
                data |= _rule_data(self.check_rule(rule, segment_id))
            self._append_definition(segment_id, SEGMENT_DEFINED, data, seen)
            return self.segment(segment_id)

    def change_rule(self, segment_id: str, rule: str, if_match: int | None = None) -> Segment:
        """A new version of a dynamic segment's rule; `if_match` guards against lost updates."""
        with self._defining() as seen:
            segment = self._live(segment_id)
            if segment.kind != DYNAMIC:
                raise Conflict("a static list has no rule to change", field="rule", id=segment_id)
            if if_match is not None and if_match != segment.version:
                raise VersionMismatch(if_match, segment.version)
            checked = self.check_rule(rule, segment_id)
            current = segment.current
            if current is not None and _meaning(checked.ast, checked.references) == _meaning(
                current.ast, current.references
            ):
                return segment  # the rule it has (written alike or not): nothing to version
            self._append_definition(
                segment_id, SEGMENT_RULE_CHANGED, _rule_data(checked), seen, if_match
            )
            return self.segment(segment_id)

    def archive(self, segment_id: str, if_match: int | None = None) -> Segment:
        """Archive a segment: its members leave; the log keeps everything."""
        with self._defining() as seen:
            segment = self._live(segment_id)
            if if_match is not None and if_match != segment.version:
                raise VersionMismatch(if_match, segment.version)
            users = [s.name for s in self.registry.live() if segment_id in s.references()]
            if users:
                raise Conflict(
                    f"the segment is used by {', '.join(users)}; change their rules first",
                    id=segment_id,
                )
            self._append_definition(segment_id, SEGMENT_ARCHIVED, {}, seen, if_match)
            return self.segment(segment_id)

    def edit_static(
        self, segment_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> Segment:
        """Add contacts to, or remove them from, a static list (one atomic append of what
        changes: a list synced again and again does not fill the log with no-ops)."""
        # Under the lock, so that the answer is the list as it now is, not a reader's copy.
        with self._waited():
            segment = self._live(segment_id)
            if segment.kind != STATIC:
                raise Conflict("members of a dynamic segment follow its rule", id=segment_id)
            self.catch_up()  # what another process appended counts too
            members = self.projection.members_among(segment_id, [*add, *remove])
            add = [c for c in dict.fromkeys(add) if c not in members]
            remove = [c for c in dict.fromkeys(remove) if c in members]
            stream = segment_stream(segment_id)
            events = []
            if add:
                events.append(
                    NewEvent(self.new_id(), stream, MEMBERS_ADDED, {"contacts": list(add)})
                )
            if remove:
                events.append(
                    NewEvent(self.new_id(), stream, MEMBERS_REMOVED, {"contacts": list(remove)})
                )
            if events:
                self.log.append(events)
                self._apply_appended()
            return self.segment(segment_id)

    def segments(self, include_archived: bool = False) -> list[Segment]:
        """Every segment, by id."""
        found = self.registry.segments.values()
        return sorted(
            (s for s in found if include_archived or s.archived_at is None), key=lambda s: s.id
        )

    def segment(self, segment_id: str) -> Segment:
        """One segment, archived or not."""
        segment = self.registry.get(segment_id)
        if segment is None:
            raise NotFound(f'there is no segment "{segment_id}"', id=segment_id)
        return segment

    def _live(self, segment_id: str) -> Segment:
        segment = self.segment(segment_id)
        if segment.archived_at is not None:
            raise Conflict(f'the segment "{segment_id}" is archived', id=segment_id)
        return segment

    def _caught_up(self) -> None:
        """Catch up, waiting for another thread's catch-up no longer than wait_ms, and not at
        all while a backlog is being caught up; StoreBusy then."""
        with self._waited():
            self.catch_up()

    @contextlib.contextmanager
    def _waited(self) -> Iterator[None]:
        """The lock, waited for no longer than wait_ms, and not while a backlog is caught up
        in turns (the thread at it takes the lock back at once); StoreBusy then."""
        with self._wanting():
            for _ in range(max(1, self.wait_ms // _WAIT_STEP_MS)):
                self._no_backlog()
                if self._lock.acquire(timeout=_WAIT_STEP_MS / 1000):
                    break
            else:
                raise StoreBusy(f"a catch-up held the service for over {self.wait_ms} ms")
        try:
            self._no_backlog()
            yield
        finally:
            self._lock.release()

    def request_began(self) -> None:
        """A request is being served: idle-time work stops at its next step, and does not
        start again until every request has ended (they share the interpreter too)."""
        with self._counting:
            self._wanted += 1

    def request_ended(self) -> None:
        """The request that began has ended."""
        with self._counting:
            self._wanted -= 1

    @contextlib.contextmanager
    def _wanting(self) -> Iterator[None]:
        """Count this thread among those that want the writer, while it waits for it or
        holds it."""
        self.request_began()
        try:
            yield
        finally:
            self.request_ended()

    def _no_backlog(self) -> None:
        if self.backlog_since is not None:
            raise StoreBusy("a backlog of time-driven changes is being caught up")

    @contextlib.contextmanager
    def _defining(self) -> Iterator[Unchanged]:
        """A change of definitions, decided on every definition in the log: under the lock
        (one thread of this process at a time), with the registry brought up to the log, and
        the guard that refuses the append if another process defined anything since. Checks
        such as "no cycle" and "no live segment refers to it" read all the definitions, so
        guarding the streams written or referred to would not do: two changes, each fine
        alone, could make a cycle together."""
        with self._waited():
            self.catch_up()
            # Read before the registry is (each read of it under the lock copies it afresh),
            # so that it holds at least every definition up to here.
            seen = self.projection.checkpoint()[0]
            yield Unchanged(seen, SEGMENT_STREAM, DEFINITION_TYPES)

    def _append_definition(
        self,
        segment_id: str,
        event_type: str,
        data: dict,
        seen: Unchanged,
        if_match: int | None = None,
    ) -> None:
        event = NewEvent(self.new_id(), segment_stream(segment_id), event_type, data)
        try:
            self.log.append([event], unchanged=seen)
        except ConcurrencyError as exc:
            if if_match is not None:
                # Another process changed the segments meanwhile: if this one, the ETag is out
                # of date (412), as it would have been found had that change come first.
                self.catch_up()
                now = self.segment(segment_id).version
                if now != if_match:
                    raise VersionMismatch(if_match, now) from None
            raise Conflict(
                "the segments changed meanwhile (another process); read them again and retry",
                stream=exc.stream,
            ) from exc
        self._apply_appended()

    def _apply_appended(self, stored: Any = None) -> None:
        """Bring membership up to date with what was just appended. Another writer may take
        the database between the append and this, or applying it may fail; the append stands
        all the same, and the caller must not be told that nothing was stored."""
        try:
            self._caught_up()
        except StoreBusy as exc:
            raise NotYetApplied(str(exc), stored) from exc
        except Exception as exc:
            raise NotYetApplied(f"applying it failed ({exc!r})", stored, busy=False) from exc

    # ---- membership questions ----

    def preview(self, rule: str, at: int | None = None, sample: int = 20) -> Preview:
        """How many contacts a rule would hold at an instant, and a few of them; saves nothing."""
        checked = self.check_rule(rule)
        t = self.clock() if at is None else at
        members = self._sets_at(t).answer_rule(checked.ast, checked.references)
        return Preview(checked.text, t, len(members), sorted(members)[:sample])

    def members(
        self, segment_id: str, at: int | None = None, after: str | None = None, limit: int = 100
    ) -> tuple[list[Member], str | None]:
        """A page of members, now or as of an instant; and the cursor of the next page."""
        segment = self.segment(segment_id)
        if at is None:
            self._caught_up()
            rows = self.projection.member_page(segment_id, after, limit + 1)
            page = [Member(c, since) for c, since in rows]
        else:
            found = self._members_at(segment.id, at)
            start = 0 if after is None else bisect.bisect_right(found, after)
            page = [Member(c) for c in found[start : start + limit + 1]]
        more = len(page) > limit
        page = page[:limit]
        return page, (page[-1].contact_id if more else None)

    def contact_segments(
        self, contact: str, at: int | None = None
    ) -> list[tuple[Segment, int | None]]:
        """The segments a contact is in, now (with since) or as of an instant."""
        if at is None:
            self._caught_up()
            return [
                (self.segment(s), since) for s, since in self.projection.contact_segments(contact)
            ]
        history = self._history(contact)
        asof = AsOfSegments(self.registry, history, self._edits, contact)
        return [(s, None) for s in self.segments(True) if asof.membership(s.id, at)[0]]

    def explain(self, segment_id: str, contact: str, at: int | None = None) -> Explanation:
        """Why a contact is, or is not, in a segment at an instant (default now)."""
        self.segment(segment_id)
        t = self.clock() if at is None else at
        asof = AsOfSegments(self.registry, self._history(contact), self._edits, contact)
        return asof.explain(segment_id, t)

    def transitions(
        self, segment_id: str, contact: str | None = None, after: int = 0, limit: int = 100
    ) -> tuple[list[TransitionRecord], int | None]:
        """A page of a segment's transitions (optionally one contact's), oldest first."""
        self.segment(segment_id)
        self._caught_up()
        rows = self.projection.transition_page(segment_id, contact, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more else None)

    # ---- contacts and the log ----

    def contact(
        self, contact: str
    ) -> tuple[dict[str, Any], list[StoredEvent], list[tuple[Segment, int | None]]]:
        """A contact's properties now, its events and its segments now; NotFound if it has
        no events and is in no static list."""
        stored = self.log.read_stream(CONTACT_STREAM + contact)
        current = self.contact_segments(contact)
        if not stored and not current:
            raise NotFound(f'there is no contact "{contact}"', id=contact)
        history = History(to_event(s) for s in stored)
        return history.properties_at(self.clock()), stored, current

    def contact_events(self, contact: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """A page of a contact's events after a version; NotFound if it has none and is in no
        static list."""
        stream = CONTACT_STREAM + contact
        page = self.log.read_stream(stream, after, limit)
        if (
            not page
            and (after == 0 or self.log.stream_version(stream) == 0)
            and not self.contact_segments(contact)
        ):
            raise NotFound(f'there is no contact "{contact}"', id=contact)
        return page

    def events(self, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """A page of the log, for auditors."""
        return list(self.log.read(after=after, limit=limit))

    # ---- helpers ----

    def _history(self, contact: str) -> History:
        return History(to_event(s) for s in self.log.read_stream(CONTACT_STREAM + contact))

    def _edits(self, segment_id: str) -> list[StoredEvent]:
        return self.log.read_stream(segment_stream(segment_id))

    def _rebuild(self) -> None:
        """Fill the empty projection set-wise; another process may be doing the same."""
        # A log the timeline does not handle is left to the projector, entry by entry.
        with contextlib.suppress(Unsupported):
            replay_timeline(self.log, self.projection, self.clock(), only_if_empty=True)
        give_back_freed_memory()  # the replay's columns: the service runs on for months

    def _members_at(self, segment_id: str, t: int) -> list[str]:
        """A segment's members at T, sorted; kept while no event occurred by T arrives, so
        that paging through a large answer evaluates it once, also while events flow in."""
        sets = self._sets_at(t)
        position, key = sets.max_position, (segment_id, t)
        with self._lock:
            kept = self._answers.get(key)
            # Events that occurred after T do not exist at T (RULES.md), and definitions and
            # list edits take effect when recorded: only one occurred by T can change it.
            if kept is not None and (
                kept[0] > position or self.log.occurred_between(kept[0], position, t)
            ):
                kept = None
            found = sorted(sets.answer(segment_id).members) if kept is None else kept[1]
            self._answers[key] = (position, found)
            self._answers.move_to_end(key)
            while len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)
            return found

    def _sets_at(self, t: int) -> AsOfSets:
        """Set-wise membership at T over every event known now."""
        self._caught_up()
        position, _ = self.projection.checkpoint()
        return AsOfSets(
            self.registry,
            self.log.population(),
            self.projection,
            t,
            position,
            self._edits,
            self.projection,
        )


def _rule_data(checked: CheckedRule) -> dict[str, Any]:
    return {"rule": checked.text, "ast": to_json(checked.ast), "references": checked.references}


def _meaning(rule: a.Condition, references: Mapping[str, str]) -> str:
    """A rule's canonical text with its segments named by id: "engaged", "Engaged" and
    "ENGAGED" name one segment."""
    return format_rule(a.renaming_segments(rule, references))


def _problem(node: a.Condition, message: str) -> Problem:
    span = getattr(node, "span", None)
    return Problem(span.line if span else 1, span.column if span else 1, message)
