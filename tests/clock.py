"""A clock tests set and move by hand (milliseconds since the epoch), and common instants."""

from __future__ import annotations

import threading

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


class Clock:
    """Engine code reads time only through a clock like this one."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class TurnClock(Clock):
    """Holds one thread at its third read of the clock: a catch-up in turns reads it when it
    starts and before each transaction, so it waits there, after its first, lock free."""

    def __init__(self, now: int) -> None:
        super().__init__(now)
        self.thread: int | None = None
        self.reads = 0
        self.paused = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> int:
        if threading.get_ident() == self.thread:
            self.reads += 1
            if self.reads == 3:
                self.paused.set()
                self.go.wait(10)
        return self.now
