"""As-of questions (RULES.md, "Membership over time"): membership and explanations at any T.

At T, a segment's rule is the version in force at T (its first version for an instant before
it existed), applied to every event known now with occurred_at <= T; a referenced segment
is taken at the same T in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.evaluate import Context, Explanation, Outcome, evaluate_member, explain_member
from engine.history import History
from engine.population import Answer, ContactsAt, SetEvaluator
from engine.segments import DYNAMIC, MEMBERS_ADDED, STATIC_EDIT_TYPES, Registry, Segment
from eventstore.population import PopulationQueries
from eventstore.projection import ContactReads
from grammar import ast as a
from grammar.formatter import format_rule

StaticEdits = Callable[[str], list]  # segment id -> its static-list edit events (StoredEvent)


def static_member(edits: list, contact: str, t: int) -> bool:
    """Membership of a static list at t: the contact's latest edit up to t decides."""
    member = False
    for e in edits:
        if e.type in STATIC_EDIT_TYPES and e.occurred_at <= t and contact in e.data["contacts"]:
            member = e.type == MEMBERS_ADDED
    return member


class AsOfSegments:
    """Membership of one contact in any segment at any instant, computed from scratch, each
    (segment, instant) once: a rule may refer to a segment fifty times, whose rule refers
    fifty times to another, and so on (50 ** depth evaluations otherwise)."""

    def __init__(self, registry: Registry, history: History, edits: StaticEdits, contact: str):
        self.registry = registry
        self.history = history
        self.edits = edits
        self.contact = contact
        self._outcomes: dict[tuple[str, int], Outcome] = {}
        self._explained: set[tuple[str, int]] = set()

    def _segment(self, segment_id: str) -> Segment | None:
        return self.registry.get(segment_id)

    def _archived(self, segment: Segment, t: int) -> bool:
        return segment.archived_at is not None and segment.archived_at <= t

    def membership(self, segment_id: str, t: int) -> Outcome:
        """Whether the contact is in the segment at t (and when that can change)."""
        key = (segment_id, t)
        found = self._outcomes.get(key)
        if found is None:
            found = self._outcomes[key] = self._membership(segment_id, t)
        return found

    def _membership(self, segment_id: str, t: int) -> Outcome:
        segment = self._segment(segment_id)
        if segment is None or self._archived(segment, t):
            return False, None
        if segment.kind != DYNAMIC:
            return static_member(self.edits(segment_id), self.contact, t), None
        version = segment.version_at(t)
        assert version is not None
        return evaluate_member(version.node, Context(self.history, self), t)

    def explain(self, segment_id: str, t: int) -> Explanation:
        """The evaluation tree of the contact's membership at t."""
        segment = self._segment(segment_id)
        if segment is None:
            return Explanation("segment", segment_id, False, None, {"unknown": True})
        if self._archived(segment, t):
            return Explanation("segment", segment.name, False, None, {"archived": True})
        if segment.kind != DYNAMIC:
            value = static_member(self.edits(segment_id), self.contact, t)
            # The version its transitions carry (a list has no rule: always 1).
            details = {"segment_id": segment_id, "rule_version": segment.version}
            return Explanation("static_list", segment.name, value, None, details)
        version = segment.version_at(t)
        assert version is not None
        details = {"segment_id": segment_id, "rule_version": version.version}
        if (segment_id, t) in self._explained:
            # Shown once per explanation: referred to again, its tree would be repeated (and
            # its references' trees in it), fifty times a level.
            value, nxt = self.membership(segment_id, t)
            text = format_rule(version.ast)
            return Explanation("membership", text, value, nxt, {**details, "shown_above": True})
        self._explained.add((segment_id, t))
        tree = explain_member(version.node, Context(self.history, self), t)
        return Explanation(
            tree.kind,
            tree.text,
            tree.value,
            tree.next_change,
            {**tree.details, **details},
            tree.children,
        )


class AsOfSets:
    """Members of any segment at T, set-wise: each segment by its rule version in force at T."""

    def __init__(
        self,
        registry: Registry,
        queries: PopulationQueries,
        starts: ContactReads,
        t: int,
        max_position: int,
        edits: StaticEdits,
        views: ContactReads | None = None,
    ) -> None:
        self.registry = registry
        self.views = views
        self.queries = queries
        self.contacts = ContactsAt(starts, t)  # shared by every segment asked
        self.t = t
        self.max_position = max_position
        self.edits = edits
        self._answers: dict[str, Answer] = {}

    def answer(self, segment_id: str) -> Answer:
        """The segment's members at T (no deadlines: nothing is projected from this)."""
        found = self._answers.get(segment_id)
        if found is None:
            found = self._compute(segment_id)
            self._answers[segment_id] = found
        return found

    def answer_rule(self, rule: a.Condition, references: Mapping[str, str]) -> set[str]:
        """Who a rule (not saved as a segment) holds at T."""
        return self._evaluator().members(rule, references).members

    def _evaluator(self) -> SetEvaluator:
        return SetEvaluator(
            self.queries,
            self.contacts,
            self.max_position,
            self,
            bounds=False,
            views=self.views,
        )

    def _compute(self, segment_id: str) -> Answer:
        segment = self.registry.get(segment_id)
        if segment is None or (segment.archived_at is not None and segment.archived_at <= self.t):
            return Answer(set())
        if segment.kind != DYNAMIC:
            return Answer(static_members(self.edits(segment_id), self.t), all_exist=False)
        version = segment.version_at(self.t)
        assert version is not None
        return self._evaluator().members(version.ast, version.references)


def static_members(edits: list, t: int) -> set[str]:
    """Every member of a static list at t."""
    members: set[str] = set()
    for e in edits:
        if e.type in STATIC_EDIT_TYPES and e.occurred_at <= t:
            contacts = set(e.data["contacts"])
            members = members | contacts if e.type == MEMBERS_ADDED else members - contacts
    return members
