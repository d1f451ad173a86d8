"""Contact histories as the projector reads them: from the log's contact streams, through a
bounded cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from engine.history import Event, History
from eventstore.interface import EventStore, StoredEvent

CONTACT_STREAM = "contact:"


def contact_of(stream: str) -> str | None:
    """The contact id of a `contact:<id>` stream, None for other streams."""
    return stream[len(CONTACT_STREAM) :] if stream.startswith(CONTACT_STREAM) else None


def to_event(stored: StoredEvent) -> Event:
    """The engine's view of a stored contact event."""
    return Event(
        stored.position,
        stored.event_id,
        stored.type,
        stored.occurred_at,
        stored.recorded_at,
        stored.data,
    )


def _upto(stored: Iterable[StoredEvent], upto: int) -> History:
    """A history of the stored events with position <= upto."""
    return History(to_event(s) for s in stored if s.position <= upto)


class Histories:
    """A bounded cache of contact histories as of the projector's position."""

    def __init__(self, log: EventStore, capacity: int) -> None:
        self._log = log
        self._capacity = capacity
        self._cache: OrderedDict[str, History] = OrderedDict()

    def clear(self) -> None:
        """Forget everything (another process may have moved the projection)."""
        self._cache.clear()

    def get(self, contact: str, upto: int) -> History:
        """The contact's events with position <= upto."""
        history = self._cache.get(contact)
        if history is None:
            stored = self._log.read_stream(CONTACT_STREAM + contact)
            history = _upto(stored, upto)
            self._remember(contact, history)
        else:
            self._cache.move_to_end(contact)
        return history

    def prefetch(self, contacts: Iterable[str], upto: int) -> None:
        """Read the histories of contacts not cached yet, in few queries."""
        missing = [CONTACT_STREAM + c for c in contacts if c not in self._cache]
        if not missing:
            return
        for stream, stored in self._log.read_streams(missing).items():
            history = _upto(stored, upto)
            self._remember(stream[len(CONTACT_STREAM) :], history)

    def read(self, contacts: Iterable[str], upto: int) -> dict[str, History]:
        """The histories of some contacts, those not cached read in few queries and not kept:
        work done in idle time leaves the cache (and the collector's work) as it was."""
        found = {c: h for c in contacts if (h := self._cache.get(c)) is not None}
        missing = [CONTACT_STREAM + c for c in contacts if c not in found]
        if missing:
            for stream, stored in self._log.read_streams(missing).items():
                history = _upto(stored, upto)
                found[stream[len(CONTACT_STREAM) :]] = history
        return found

    def extend(self, contact: str, events: Sequence[Event], before: int, known: bool) -> History:
        """The contact's history up to position `before` (`known`: it has events there), with
        the events that follow it added."""
        if known or contact in self._cache:
            history = self.get(contact, before)
        else:
            history = History()
            self._remember(contact, history)
        history.add(events)
        return history

    def _remember(self, contact: str, history: History) -> None:
        self._cache[contact] = history
        self._cache.move_to_end(contact)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
