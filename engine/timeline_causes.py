"""Why each transition happened, set-wise, as the projector decides it (engine/projector.py).

A transition at instant t takes as its cause the highest-positioned log entry recorded at t
that bears on the (segment, contact): an event of the contact, dated by t, of a type the
segment's closure reads (a `contact_updated` that sets a property it reads; any event at all
if the contact had none dated and known before t), an edit at t of a static list in the
closure that names the contact, or a definition at t of a segment in the closure. With none,
the cause is time. A segment archived at t gives its archiving as the cause of every change
at t; a static list's changes are caused by its own edits only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.segments import DYNAMIC, Segment
from engine.timeline_defs import Definitions, Reads
from engine.timeline_log import Log
from engine.timeline_steps import INT, Axis, present

EVENT, LIST_EDIT, TIME, ARCHIVED = "event", "list_edit", "time", "archived"


@dataclass
class Arrivals:
    """Contact events dated by the instant they were recorded, by (contact, recorded_at)."""

    keys: np.ndarray
    rows: np.ndarray  # event rows (engine.timeline_log.Events)


@dataclass
class EditRows:
    """Taken static-list edits, one row per named contact, by (contact, recorded_at)."""

    keys: np.ndarray
    position: np.ndarray
    segment: np.ndarray  # index into `segments`
    segments: list[str]


def ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every index of the ranges [lo, hi), and which range each one belongs to."""
    lengths = hi - lo
    owner = np.repeat(np.arange(len(lo)), lengths)
    starts = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - np.repeat(starts, lengths) + np.repeat(lo, lengths), owner


def range_max(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """The largest value per range (0 for an empty one)."""
    best = np.zeros(count, INT)
    np.maximum.at(best, owner, values)
    return best


class Causes:
    """Causes of transitions, one segment at a time."""

    def __init__(
        self,
        axis: Axis,
        log: Log,
        definitions: Definitions,
        present: dict[str, np.ndarray],
        contact_index: dict[str, int],
        seen_from: np.ndarray,
    ) -> None:
        self.axis = axis
        self.definitions = definitions
        self.seen_from = seen_from
        self.types = log.events.types
        self.epoch_starts = np.array([e.start for e in definitions.epochs], INT)
        self.instants = log.instants
        self.events = log.events
        self.present = present
        self.arrivals = _arrivals(axis, log)
        self.edits = _edit_rows(axis, definitions, contact_index)

    def of(self, segment: Segment, keys: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Cause kinds and positions (0: none) of a segment's transitions at these keys."""
        t = self.axis.time(keys)
        count = len(keys)
        best = np.zeros(count, INT)
        kind = np.full(count, TIME, dtype=object)
        slot = np.minimum(np.searchsorted(self.instants, t), max(len(self.instants) - 1, 0))
        at_instant = self.instants[slot] == t if len(self.instants) else np.zeros(count, bool)
        epoch = np.searchsorted(self.epoch_starts, t, side="right") - 1
        if segment.kind == DYNAMIC:
            self._take(best, kind, self._events(segment, keys, epoch, at_instant), EVENT)
        self._take(best, kind, self._edits(segment, keys, epoch, at_instant), LIST_EDIT)
        if segment.kind == DYNAMIC:
            for instant in self.definitions.changes_at:
                found = self.definitions.closure_change(segment.id, instant)
                if found is not None:
                    here = (t == instant) & (best < found[0])
                    best[here], kind[here] = found[0], found[1]
        if segment.archived_at is not None:
            here = t == segment.archived_at
            best[here], kind[here] = segment.archived_position, ARCHIVED
        return kind.tolist(), best

    @staticmethod
    def _take(best: np.ndarray, kind: np.ndarray, found: np.ndarray, name: str) -> None:
        higher = found > best
        best[higher] = found[higher]
        kind[higher] = name

    def _events(
        self, segment: Segment, keys: np.ndarray, epoch: np.ndarray, at_instant: np.ndarray
    ) -> np.ndarray:
        """The highest position of the bearing events recorded at each transition's instant."""
        arrivals = self.arrivals
        lo = np.searchsorted(arrivals.keys, keys, side="left")
        hi = np.searchsorted(arrivals.keys, keys, side="right")
        hi = np.where(at_instant, hi, lo)
        rows, owner = ranges(lo, hi)
        if not len(rows):
            return np.zeros(len(keys), INT)
        # A contact seen for the first time at t: every event of t brings it into being.
        contact = self.axis.contact(keys)
        new = self.seen_from[contact] == self.axis.time(keys)
        bearing = new[owner].copy()
        for e in _distinct_epochs(epoch[owner]):
            mine = epoch[owner] == e
            reads = self._reads(segment.id, e)
            if reads is None:
                continue
            bearing[mine] |= self._reads_mask(reads, rows[mine])
        positions = self.events.position[arrivals.rows[rows]]
        return range_max(np.where(bearing, positions, 0), owner, len(keys))

    def _reads(self, segment_id: str, epoch: int) -> Reads | None:
        if epoch < 0:
            return None
        return self.definitions.epochs[epoch].reads.get(segment_id)

    def _reads_mask(self, reads: Reads, rows: np.ndarray) -> np.ndarray:
        """Which arrivals a segment reads: their type, or a property a contact_updated sets."""
        if None in reads.types:
            return np.ones(len(rows), bool)
        events = self.arrivals.rows[rows]
        wanted = [self.types.index(t) for t in reads.types if t in self.types]
        mask = np.isin(self.events.type[events], wanted)
        for prop in reads.properties:
            setting = self.present[prop]  # sorted rows of the events that set it
            at = np.minimum(np.searchsorted(setting, events), max(len(setting) - 1, 0))
            if len(setting):
                mask |= setting[at] == events
        return mask

    def _edits(
        self, segment: Segment, keys: np.ndarray, epoch: np.ndarray, at_instant: np.ndarray
    ) -> np.ndarray:
        """The highest position of the edits at each instant, of lists in the closure, that
        name the contact (of the list itself, for a static list)."""
        edits = self.edits
        lo = np.searchsorted(edits.keys, keys, side="left")
        hi = np.searchsorted(edits.keys, keys, side="right")
        rows, owner = ranges(lo, np.where(at_instant, hi, lo))
        if not len(rows):
            return np.zeros(len(keys), INT)
        if segment.kind != DYNAMIC:
            bearing = edits.segment[rows] == edits.segments.index(segment.id)
        else:
            bearing = np.zeros(len(rows), bool)
            for e in _distinct_epochs(epoch[owner]):
                reads = self._reads(segment.id, e)
                if reads is None:
                    continue
                lists = [i for i, s in enumerate(edits.segments) if s in reads.segments]
                mine = epoch[owner] == e
                bearing[mine] = np.isin(edits.segment[rows[mine]], lists)
        return range_max(np.where(bearing, edits.position[rows], 0), owner, len(keys))


def _distinct_epochs(epochs: np.ndarray) -> list[int]:
    """The epochs that occur (-1: before any definition)."""
    return [e - 1 for e in present(epochs + 1)]


def _arrivals(axis: Axis, log: Log) -> Arrivals:
    e = log.events
    rows = np.flatnonzero(e.occurred <= e.recorded).astype(np.int32)
    keys = axis.key(e.contact[rows], e.recorded[rows])
    order = np.argsort(keys, kind="stable")  # events by (contact, occurred_at): nearly sorted
    return Arrivals(keys[order], rows[order])


def _edit_rows(axis: Axis, definitions: Definitions, contact_index: dict[str, int]) -> EditRows:
    segments = sorted({edit.segment_id for edit in definitions.edits})
    contact: list[int] = []
    instant: list[int] = []
    position: list[int] = []
    owner: list[int] = []
    for edit in definitions.edits:
        for name in edit.contacts:
            contact.append(contact_index[name])
            instant.append(edit.recorded_at)
            position.append(edit.position)
            owner.append(segments.index(edit.segment_id))
    keys = axis.key(np.array(contact, INT), np.array(instant, INT))
    order = np.argsort(keys, kind="stable")
    return EditRows(
        keys[order], np.array(position, INT)[order], np.array(owner, INT)[order], segments
    )
