"""Step functions of time for every contact at once: the algebra of the timeline replay.

A value that depends on a contact and an instant (a leaf of a rule, a segment's membership)
is held as the instants where it may change, with the value from each one on. Instants of
all contacts share one sorted int64 axis: `key = contact << shift | (t - origin)`, so one
`searchsorted` answers "the value of every contact at every instant asked" at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INT = np.int64


@dataclass(frozen=True)
class Axis:
    """Keys for (contact, instant) pairs, in contact order and then time order.

    Instants before `origin` (nothing exists yet) and after the axis's end are clamped; a
    clamped instant keeps the order of the instants it stands for, never reverses it.
    """

    origin: int
    shift: int

    @classmethod
    def for_log(cls, contacts: int, earliest: int) -> Axis:
        """An axis for this many contacts, starting just before the log's earliest instant."""
        bits = max(1, int(contacts).bit_length())
        return cls(earliest - 1, 62 - bits)

    @property
    def end(self) -> int:
        """The latest instant the axis holds exactly."""
        return self.origin + (1 << self.shift) - 1

    def key(self, contact: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """The keys of (contact, instant) pairs (computed in place: arrays may be large)."""
        offset = np.array(t, dtype=INT)
        offset -= self.origin
        np.clip(offset, 0, (1 << self.shift) - 1, out=offset)
        keys = np.array(contact, dtype=INT)
        keys <<= self.shift
        keys |= offset
        return keys

    def contact(self, keys: np.ndarray) -> np.ndarray:
        """The contact of each key."""
        return keys >> self.shift

    def time(self, keys: np.ndarray) -> np.ndarray:
        """The instant of each key."""
        return (keys & ((1 << self.shift) - 1)) + self.origin


@dataclass(frozen=True)
class Steps:
    """A boolean (or small-integer) function of (contact, instant): from `keys[i]` on, the
    value is `vals[i]` until the contact's next key; before a contact's first key, `init`."""

    keys: np.ndarray
    vals: np.ndarray
    init: bool

    @classmethod
    def constant(cls, value: bool) -> Steps:
        """The same value for every contact at every instant."""
        return cls(np.empty(0, INT), np.empty(0, bool), value)

    def at(self, axis: Axis, query: np.ndarray) -> np.ndarray:
        """The value at each key of `query`."""
        if not len(self.keys):
            return np.full(len(query), self.init, dtype=self.vals.dtype)
        j = np.searchsorted(self.keys, query, side="right") - 1
        jj = np.maximum(j, 0)
        same = (j >= 0) & ((self.keys[jj] >> axis.shift) == (query >> axis.shift))
        return np.where(same, self.vals[jj], self.init)

    def negate(self) -> Steps:
        """The opposite value everywhere."""
        return Steps(self.keys, ~self.vals, not self.init)

    def changes(self, axis: Axis) -> Steps:
        """Only the keys at which the value changes."""
        keep = changed(axis, self.keys, self.vals, self.init)
        return Steps(self.keys[keep], self.vals[keep], self.init)


def changed(axis: Axis, keys: np.ndarray, vals: np.ndarray, init: object) -> np.ndarray:
    """Where the value differs from the one just before (a contact starts from `init`)."""
    if not len(keys):
        return np.empty(0, bool)
    prev = np.empty_like(vals)
    prev[0] = init
    prev[1:] = vals[:-1]
    contact = keys >> axis.shift
    first = np.empty(len(keys), bool)
    first[0] = True
    first[1:] = contact[1:] != contact[:-1]
    prev[first] = init
    return vals != prev


def last_of_runs(sorted_keys: np.ndarray) -> np.ndarray:
    """Indexes of the last element of each run of equal keys (the keys are sorted)."""
    if not len(sorted_keys):
        return np.empty(0, INT)
    ends = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1])
    return np.append(ends, len(sorted_keys) - 1)


def first_of_runs(sorted_keys: np.ndarray) -> np.ndarray:
    """Indexes of the first element of each run of equal values (the values are sorted)."""
    if not len(sorted_keys):
        return np.empty(0, INT)
    return np.append(0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1)


def grid(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Every key of the parts, once, sorted (the parts are sorted: merging them is cheap)."""
    present = [p for p in parts if len(p)]
    if not present:
        return np.empty(0, INT)
    return distinct(np.sort(np.concatenate(present), kind="stable"))


def distinct(sorted_keys: np.ndarray) -> np.ndarray:
    """The keys of a sorted array, once each (np.unique hashes, which is slower here)."""
    if not len(sorted_keys):
        return sorted_keys
    keep = np.empty(len(sorted_keys), bool)
    keep[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=keep[1:])
    return sorted_keys[keep]


def present(values: np.ndarray) -> list[int]:
    """The distinct small non-negative integers of an array."""
    return np.flatnonzero(np.bincount(values)).tolist() if len(values) else []


def segmented_cumsum(values: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Running sums that start again at each contact (rows sorted by contact)."""
    total = np.cumsum(values)
    if not len(values):
        return total
    starts = first_of_runs(contact)
    before = total[starts] - values[starts]
    lengths = np.diff(np.append(starts, len(values)))
    return total - np.repeat(before, lengths)
