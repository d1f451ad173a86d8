"""Rebuilding the membership projection from the log, and checking a live one against it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.projector import Projector
from engine.timeline import replay_timeline
from engine.timeline_defs import Unsupported
from eventstore.interface import EventStore
from eventstore.projection import ProjectionStore, TransitionRecord

Progress = Callable[[int], None]


def replay(
    log: EventStore,
    projection: ProjectionStore,
    now: int,
    progress: Progress | None = None,
    method: str = "projector",
) -> int | None:
    """Drop the projection and apply the whole log again, with deadlines fired in between.

    `method` "projector" runs the incremental projector over the log; "timeline" computes
    the same projection set-wise, by intervals of time (engine/timeline.py), and falls back
    to the projector for the rare logs it does not handle.
    """
    if method == "timeline":
        try:
            return replay_timeline(log, projection, now, progress)
        except Unsupported:
            pass  # the projector rebuilds every log
    elif method != "projector":
        raise ValueError(f'method is "projector" or "timeline", not {method!r}')
    projection.reset()
    return Projector(log, projection).advance(now, progress=progress)


@dataclass(frozen=True)
class Report:
    """What a verification compared and the differences it found (at most `limit` of each)."""

    position: int
    instant: int
    transitions: int
    members: int
    differences: list[str]

    @property
    def ok(self) -> bool:
        """True when the live projection equals the replay."""
        return not self.differences


def verify(
    log: EventStore,
    live: ProjectionStore,
    scratch: ProjectionStore,
    progress: Progress | None = None,
    limit: int = 20,
    method: str = "timeline",
) -> Report:
    """Replay into `scratch` up to the live checkpoint and compare, transitions included.

    By default the replay is the timeline's: a second implementation checking the first.
    """
    with live.snapshot() as (checkpoint, live_transitions, live_members):
        position, instant = checkpoint
        if method == "timeline" and position == log.last_position():
            replay(log, scratch, instant, progress, method="timeline")
        else:
            # The log has moved on since (or the projector was asked for): stop where live is.
            scratch.reset()
            Projector(log, scratch).advance(instant, until_position=position, progress=progress)
        with scratch.snapshot() as (_, replay_transitions, replay_members):
            transitions, found = _compare(
                "transition", map(_key, live_transitions), map(_key, replay_transitions), limit
            )
            members, more = _compare("member", live_members, replay_members, limit)
    return Report(position, instant, transitions, members, found + more)


def _key(t: TransitionRecord) -> tuple:
    return (
        t.segment_id,
        t.contact_id,
        t.at,
        t.kind,
        t.rule_version,
        t.cause.kind,
        t.cause.position,
    )


def _compare(
    what: str, live: Iterator[tuple], replayed: Iterator[tuple], limit: int
) -> tuple[int, list[str]]:
    differences: list[str] = []
    count = 0
    for a, b in itertools.zip_longest(live, replayed):
        count += 1
        if a != b and len(differences) < limit:
            differences.append(f"{what} #{count}: live {a}, replay {b}")
    return count, differences
