"""An app on a fresh SQLite file with a clock the test moves, and a key for every role."""

from __future__ import annotations

import pytest

from api import create_app
from tests.clock import Clock

START = 1_795_000_000_000  # 2026-11-18T...Z


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def app(tmp_path, clock):
    app = create_app(
        {
            "SEGMENTS_DB": str(tmp_path / "segments.db"),
            "CLOCK": clock,
            "SCHEDULER": False,
            "MAX_BATCH": 50,
            "MAX_CONTENT_LENGTH": 64 * 1024,
            "BUSY_TIMEOUT_MS": 300,  # a test that holds the writer's lock waits no longer
            "TESTING": True,
        }
    )
    yield app
    found = app.extensions["segments"]
    found.service.log.close()
    found.service.projection.close()
    found.keys.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def keys(app, clock):
    store = app.extensions["segments"].keys
    return {
        role: store.create(role, f"test {role}", clock())[1]
        for role in ("admin", "marketer", "producer", "auditor")
    }


@pytest.fixture
def as_role(keys):
    def headers(role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}", **extra}

    return headers


@pytest.fixture
def api(client, as_role):
    """Calls as a role: api("marketer").post("/v1/segments", json=...)."""

    class Caller:
        def __init__(self, role: str) -> None:
            self.headers = as_role(role)

        def get(self, url: str, **kw):
            return client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def post(self, url: str, **kw):
            return client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def put(self, url: str, **kw):
            return client.put(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def delete(self, url: str, **kw):
            return client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def patch(self, url: str, **kw):
            return client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    return Caller
