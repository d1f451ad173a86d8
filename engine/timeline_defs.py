"""Segment definitions over time, for the timeline replay: the registry after each instant
that changed it, what each segment reads then, and the static-list edits that were taken."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from engine.projector import CAUSE_OF_DEFINITION
from engine.segments import (
    DEFINITION_TYPES,
    DYNAMIC,
    MEMBERS_ADDED,
    SEGMENT_DEFINED,
    SEGMENT_RULE_CHANGED,
    SEGMENT_STREAM,
    STATIC_EDIT_TYPES,
    CycleError,
    Registry,
    Segment,
    dependency_order,
)
from eventstore.population import LogEntry


class Unsupported(ValueError):
    """A log the timeline replay does not rebuild (the projector's replay does)."""


@dataclass(frozen=True)
class Reads:
    """What a segment's membership depends on while a registry state lasts (as the projector's
    `Reads`): event types (None: any), contact properties, and the segments of its closure."""

    types: frozenset[str | None]
    properties: frozenset[str]
    segments: frozenset[str]


@dataclass(frozen=True)
class Epoch:
    """The registry from one definition instant until the next."""

    start: int
    reads: dict[str, Reads]


@dataclass(frozen=True)
class Edit:
    """A static-list edit the projector takes (the list exists and is live at its instant)."""

    segment_id: str
    position: int
    recorded_at: int
    add: bool
    contacts: Sequence[str]


@dataclass
class Definitions:
    """Every segment definition and static-list edit of the log, applied in order."""

    registry: Registry = field(default_factory=Registry)
    epochs: list[Epoch] = field(default_factory=list)
    # instant -> segment id -> (position, cause kind) of its last definition at that instant
    changes_at: dict[int, dict[str, tuple[int, str]]] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)  # the definition events kept

    def order(self) -> list[str]:
        """Segment ids, each after every segment any of its versions refers to."""
        graph = {
            s.id: {ref for v in s.versions for ref in v.references.values()}
            for s in self.registry.segments.values()
        }
        try:
            return dependency_order(graph)
        except CycleError as exc:
            # Versions at different times may refer both ways; no single order computes them.
            raise Unsupported(str(exc)) from exc

    def epoch_at(self, t: int) -> Epoch | None:
        """The registry state in force at t."""
        found = None
        for epoch in self.epochs:
            if epoch.start > t:
                break
            found = epoch
        return found

    def closure_change(self, segment_id: str, t: int) -> tuple[int, str] | None:
        """The highest-positioned definition at t of a segment in the closure, with its kind."""
        changes = self.changes_at.get(t)
        epoch = self.epoch_at(t)
        if not changes or epoch is None or segment_id not in epoch.reads:
            return None
        found = [changes[s] for s in epoch.reads[segment_id].segments if s in changes]
        return max(found, default=None)


def read_definitions(entries: Iterable[LogEntry]) -> Definitions:
    """Apply the definition and edit events of the `segment:` streams, instant by instant."""
    found = Definitions()
    instant: list[LogEntry] = []
    for entry in entries:
        if instant and entry.recorded_at != instant[0].recorded_at:
            _apply_instant(found, instant)
            instant = []
        instant.append(entry)
    if instant:
        _apply_instant(found, instant)
    return found


def _apply_instant(found: Definitions, entries: list[LogEntry]) -> None:
    """Definitions first, then edits, as the projector applies one instant."""
    r = entries[0].recorded_at
    registry = found.registry
    changed = False
    for e in entries:
        if e.type not in DEFINITION_TYPES:
            continue
        segment_id = e.stream[len(SEGMENT_STREAM) :]
        existing = registry.get(segment_id)
        if (e.type == SEGMENT_DEFINED) == (existing is not None):
            raise Unsupported(f"{e.type} of segment {segment_id!r} at position {e.position}")
        if existing is not None and existing.archived_at is not None:
            raise Unsupported(f"{e.type} of the archived segment {segment_id!r}")
        if e.type == SEGMENT_RULE_CHANGED and existing is not None and existing.kind != DYNAMIC:
            raise Unsupported(f"a rule change of the static list {segment_id!r}")
        registry.apply(e)
        found.entries.append(e)
        found.changes_at.setdefault(r, {})[segment_id] = (e.position, CAUSE_OF_DEFINITION[e.type])
        changed = True
    if changed:
        found.epochs.append(Epoch(r, {s: _reads(registry, s) for s in registry.segments}))
    for e in entries:
        if e.type not in STATIC_EDIT_TYPES:
            continue
        segment = registry.get(e.stream[len(SEGMENT_STREAM) :])
        if segment is None or segment.kind == DYNAMIC or not segment.active_at(r):
            continue
        contacts = e.data.get("contacts", [])
        found.edits.append(Edit(segment.id, e.position, r, e.type == MEMBERS_ADDED, contacts))


def _reads(registry: Registry, segment_id: str) -> Reads:
    closure: list[Segment] = registry.closure(segment_id)
    types: set[str | None] = set()
    properties: set[str] = set()
    for s in closure:
        if s.current is not None:
            types |= s.current.event_types
            properties |= s.current.properties
    return Reads(frozenset(types), frozenset(properties), frozenset(s.id for s in closure))
