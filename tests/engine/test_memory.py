"""Freed memory goes back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.memory import _malloc_trim, give_back_freed_memory


def resident_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(sys.platform != "linux" or _malloc_trim() is None, reason="glibc only")
def test_memory_freed_in_small_blocks_goes_back_to_the_system():
    blocks = [bytearray(4000) for _ in range(25_000)]  # 100 MB in blocks malloc keeps
    kept = blocks[::16]  # a few stay: the freed ones lie between them, not at the heap's top
    del blocks
    before = resident_mb()
    give_back_freed_memory()
    assert resident_mb() < before - 50
    assert kept  # held until now
