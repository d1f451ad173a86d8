"""Fixtures every test shares; tests never depend on the machine's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No SEGMENTS_* setting leaks in from the machine running the tests."""
    for name in ("SEGMENTS_DB", "SEGMENTS_DURABILITY", "FLASK_APP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
