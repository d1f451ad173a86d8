"""Segment definitions: their events in the log, their versions, and the references between them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from engine.evaluate import Node, compile_rule
from grammar import ast as a
from grammar.serialize import from_json

SEGMENT_DEFINED = "segment_defined"
SEGMENT_RULE_CHANGED = "segment_rule_changed"
SEGMENT_ARCHIVED = "segment_archived"
MEMBERS_ADDED = "segment_members_added"
MEMBERS_REMOVED = "segment_members_removed"
DEFINITION_TYPES = frozenset({SEGMENT_DEFINED, SEGMENT_RULE_CHANGED, SEGMENT_ARCHIVED})
STATIC_EDIT_TYPES = frozenset({MEMBERS_ADDED, MEMBERS_REMOVED})
SEGMENT_STREAM = "segment:"

DYNAMIC = "dynamic"
STATIC = "static"


def slugify(name: str) -> str:
    """A segment id from its name: `"Engaged leads"` -> `engaged-leads`, `"Café"` -> `cafe`,
    `"Straße"` -> `strasse`, `"Покупатели"` -> `покупатели`: letters and digits of any script,
    folded, with Latin accents dropped; anything else between them one '-'."""
    plain = "".join(map(_plain, unicodedata.normalize("NFC", name))).casefold()
    return re.sub(r"[\W_]+", "-", plain).strip("-")


def _plain(char: str) -> str:
    """A letter with its accents dropped if that leaves ASCII (é -> e, İ -> I); otherwise the
    letter itself (a dakuten changes a kana, it is no accent)."""
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base if base.isascii() else unicodedata.normalize("NFKC", char)


def segment_stream(segment_id: str) -> str:
    """The log stream that holds a segment's definition events."""
    return SEGMENT_STREAM + segment_id


@dataclass(frozen=True)
class RuleVersion:
    """One version of a dynamic segment's rule, in force from `since` (its recorded_at)."""

    version: int
    text: str
    ast: a.Condition
    references: Mapping[str, str]  # as written -> segment id
    since: int
    position: int

    @cached_property
    def node(self) -> Node:
        """The compiled evaluator of this version."""
        return compile_rule(self.ast, lambda ref: self.references[ref])

    @cached_property
    def event_types(self) -> frozenset[str | None]:
        """The event types it reads (None: any)."""
        return a.event_types(self.ast)

    @cached_property
    def properties(self) -> frozenset[str]:
        """The contact properties it reads."""
        return a.contact_properties(self.ast)


@dataclass
class Segment:
    """A segment as its definition events describe it."""

    id: str
    name: str
    kind: str
    created_at: int
    created_position: int
    versions: list[RuleVersion] = field(default_factory=list)
    archived_at: int | None = None
    archived_position: int | None = None
    description: str | None = None

    @property
    def version(self) -> int:
        """The current rule version (1 for a static list)."""
        return self.versions[-1].version if self.versions else 1

    @property
    def current(self) -> RuleVersion | None:
        """The rule in force now, None for a static list."""
        return self.versions[-1] if self.versions else None

    def version_at(self, t: int) -> RuleVersion | None:
        """The rule in force at t; before the segment existed, its first version."""
        chosen = self.versions[0] if self.versions else None
        for v in self.versions:
            if v.since <= t:
                chosen = v
        return chosen

    def active_at(self, t: int) -> bool:
        """Whether the segment exists and is not archived at t."""
        return self.created_at <= t and (self.archived_at is None or t < self.archived_at)

    def references(self) -> frozenset[str]:
        """Ids of the segments its current rule refers to."""
        current = self.current
        return frozenset(current.references.values()) if current else frozenset()


def rule_version(data: Mapping[str, Any], version: int, since: int, position: int) -> RuleVersion:
    """A rule version from a definition event's data."""
    return RuleVersion(
        version=version,
        text=data["rule"],
        ast=from_json(data["ast"]),
        references=dict(data.get("references", {})),
        since=since,
        position=position,
    )


class Registry:
    """Every segment, built by applying definition events in log order."""

    def __init__(self, segments: Iterable[Segment] = ()) -> None:
        self.segments: dict[str, Segment] = {s.id: s for s in segments}
        self._order: list[str] | None = None

    def apply(self, event: Any) -> Segment:
        """Apply one definition event (a StoredEvent of a `segment:` stream)."""
        segment_id = event.stream[len(SEGMENT_STREAM) :]
        data = event.data
        if event.type == SEGMENT_DEFINED:
            segment = Segment(
                id=segment_id,
                name=data["name"],
                kind=data.get("kind", DYNAMIC),
                created_at=event.recorded_at,
                created_position=event.position,
                description=data.get("description"),
            )
            if segment.kind == DYNAMIC:
                segment.versions.append(rule_version(data, 1, event.recorded_at, event.position))
            self.segments[segment_id] = segment
        elif event.type == SEGMENT_RULE_CHANGED:
            segment = self.segments[segment_id]
            version = rule_version(data, segment.version + 1, event.recorded_at, event.position)
            if self._closes_a_cycle(segment_id, version):
                # Two changes that crossed (before the service decided them one at a time) can
                # have put a cycle in the log: the later one never takes effect.
                return segment
            segment.versions.append(version)
        elif event.type == SEGMENT_ARCHIVED:
            segment = self.segments[segment_id]
            segment.archived_at = event.recorded_at
            segment.archived_position = event.position
        else:
            raise ValueError(f"not a definition event: {event.type}")
        self._order = None
        return segment

    def _closes_a_cycle(self, segment_id: str, version: RuleVersion) -> bool:
        graph = {s.id: s.references() for s in self.segments.values()}
        graph[segment_id] = frozenset(version.references.values())
        try:
            dependency_order(graph)
        except CycleError:
            return True
        return False

    def copy(self) -> Registry:
        """A copy that definitions applied later leave as it is."""
        return Registry(replace(s, versions=list(s.versions)) for s in self.segments.values())

    def get(self, segment_id: str) -> Segment | None:
        """A segment by id."""
        return self.segments.get(segment_id)

    def find(self, ref: str) -> Segment | None:
        """A segment by id or by name (names compare without case)."""
        if ref in self.segments:
            return self.segments[ref]
        folded = ref.casefold()
        for segment in self.segments.values():
            if segment.name.casefold() == folded:
                return segment
        return self.segments.get(slugify(ref))

    def live(self) -> list[Segment]:
        """Segments not archived, referenced ones before those that refer to them."""
        return [self.segments[i] for i in self.order() if self.segments[i].archived_at is None]

    def order(self) -> list[str]:
        """All segment ids, each after every segment its current rule refers to."""
        if self._order is None:
            self._order = dependency_order({s.id: s.references() for s in self.segments.values()})
        return self._order

    def closure(self, segment_id: str) -> list[Segment]:
        """The segment and every segment it refers to, directly or not."""
        seen: dict[str, Segment] = {}
        stack = [segment_id]
        while stack:
            current = stack.pop()
            if current in seen or current not in self.segments:
                continue
            seen[current] = self.segments[current]
            stack.extend(self.segments[current].references())
        return list(seen.values())

    def dependents(self, segment_id: str) -> list[Segment]:
        """Live segments whose rules refer to this one, directly or not, in dependency order."""
        return [
            s
            for s in self.live()
            if s.id != segment_id and any(c.id == segment_id for c in self.closure(s.id))
        ]


class CycleError(ValueError):
    """Segment references that form a cycle."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("segments refer to each other in a cycle: " + " -> ".join(cycle))
        self.cycle = cycle


def dependency_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Ids such that each comes after the ids it refers to; raises CycleError on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise CycleError([*path[path.index(node) :], node])
        state[node] = 1
        for ref in sorted(graph.get(node, ())):
            if ref in graph:
                visit(ref, [*path, node])
        state[node] = 2
        order.append(node)

    for node in sorted(graph):
        visit(node, [])
    return order
