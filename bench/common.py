"""What the benchmarks share: their start instant, a settable clock, where they keep files."""

from __future__ import annotations

import resource
from pathlib import Path

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
WORK = Path(__file__).resolve().parents[1] / "var" / "bench"


class Clock:
    """A clock the benchmark moves by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (10^6 bytes, as the targets' GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # ru_maxrss: KiB
