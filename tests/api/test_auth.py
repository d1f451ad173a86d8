"""API keys and roles: 401 without a valid key, 403 for a role that may not."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    "url", ["/healthz", "/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"]
)
def test_public_pages_need_no_key(client, url):
    with client.get(url) as response:
        assert response.status_code == 200


def test_no_key_is_401_with_a_challenge(client):
    response = client.get("/v1/segments")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json["detail"]


def test_an_unknown_key_is_401(client):
    response = client.get("/v1/segments", headers={"Authorization": "Bearer sk_nope_nope"})
    assert response.status_code == 401
    assert response.json["detail"] == "the API key is not valid or was revoked"


def test_a_revoked_key_is_401(app, client, keys, as_role):
    store = app.extensions["segments"].keys
    auditor = next(k for k in store.all() if k.role == "auditor")
    assert client.get("/v1/segments", headers=as_role("auditor")).status_code == 200
    store.revoke(auditor.key_id, 0)
    assert client.get("/v1/segments", headers=as_role("auditor")).status_code == 401


@pytest.mark.parametrize(
    ("role", "method", "url", "status"),
    [
        ("producer", "get", "/v1/segments", 403),
        ("producer", "post", "/v1/segments", 403),
        ("auditor", "post", "/v1/segments", 403),
        ("auditor", "post", "/v1/events", 403),
        ("marketer", "post", "/v1/events", 403),
        ("marketer", "get", "/v1/keys", 403),
        ("auditor", "post", "/v1/rules/validate", 403),
        ("auditor", "get", "/v1/events", 200),
        ("marketer", "get", "/v1/segments", 200),
        ("admin", "get", "/v1/keys", 200),
    ],
)
def test_roles(client, as_role, role, method, url, status):
    response = getattr(client, method)(url, headers=as_role(role), json={})
    if status == 403:
        assert response.status_code == 403
        assert response.mimetype == PROBLEM
        assert role in response.json["detail"]
    else:
        assert response.status_code == status


def test_an_admin_creates_and_revokes_keys_over_http(api, client):
    created = api("admin").post("/v1/keys", json={"role": "producer", "name": "shop"})
    assert created.status_code == 201
    key = created.json["key"]
    assert key.startswith("sk_")
    event = {"contact_id": "c-1", "type": "email_opened"}
    assert (
        client.post(
            "/v1/events", json=event, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 201
    )
    listed = api("admin").get("/v1/keys").json["keys"]
    assert all("key" not in k for k in listed)
    assert api("admin").delete(f"/v1/keys/{created.json['key_id']}").status_code == 200
    assert (
        client.post(
            "/v1/events", json=event, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 401
    )
    assert api("admin").delete(f"/v1/keys/{created.json['key_id']}").status_code == 404
