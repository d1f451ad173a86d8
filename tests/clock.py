"""A clock tests set and move by hand (milliseconds since the epoch), and common instants."""

from __future__ import annotations

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
