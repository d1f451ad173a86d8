"""Every answer of a day's calls, errors included, is one the OpenAPI document describes:
its status is listed for the operation and its body validates against the listed schema."""

from __future__ import annotations

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.clock import DAY


@pytest.fixture
def call(app, client, as_role):
    """call(role, method, url, status, **kw): the answer, asserted to be `status` and to be
    what the document says that operation answers with that status."""
    spec = client.get("/openapi.json").json
    adapter = app.url_map.bind("localhost")
    seen: set[tuple[str, str, int]] = set()

    def send(role, method, url, status, **kw):
        headers = {**(as_role(role) if role else {}), **kw.pop("headers", {})}
        answer = client.open(url, method=method, headers=headers, **kw)
        assert answer.status_code == status, (method, url, answer.get_data(as_text=True)[:300])
        try:
            rule, _ = adapter.match(url.split("?")[0], method=method, return_rule=True)
        except (NotFound, MethodNotAllowed):
            pytest.fail(f"{method} {url} is no route")
        path = rule.rule.replace("<", "{").replace(">", "}")
        documented = spec["paths"][path][method.lower()]["responses"]
        assert str(status) in documented, f"{method} {path} answered {status}, not documented"
        content = documented[str(status)].get("content")
        if content is None:
            assert not answer.get_data(), f"{method} {path} {status}: a body, none documented"
        else:
            media = answer.mimetype
            assert media in content, f"{method} {path} {status}: {media} not documented"
            schema = {**content[media]["schema"], "components": spec["components"]}
            validator = OAS30Validator(schema, format_checker=oas30_format_checker)
            errors = [
                f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer.json)
            ]
            assert not errors, (method, path, status, errors)
        seen.add((method, path, status))
        return answer

    send.seen = seen
    return send


RULE = 'opened email within 1 day and not in segment "Blocked"'


def test_a_days_answers_are_the_documented_ones(app, call, clock):
    service = app.extensions["segments"].service

    # Producers.
    opened = {"event_id": "e1", "contact_id": "ann", "type": "email_opened"}
    call("producer", "POST", "/v1/events", 201, json=opened)
    call("producer", "POST", "/v1/events", 200, json=opened)  # a repeat
    batch = [
        {"contact_id": "bob", "type": "email_opened", "properties": {"campaign": "welcome"}},
        {"contact_id": "bob", "type": "contact_updated", "properties": {"country": "DE"}},
    ]
    call("producer", "POST", "/v1/events", 201, json={"events": batch})
    call("producer", "POST", "/v1/events", 422, json={"events": [{"type": "x"}]})
    call("producer", "POST", "/v1/events", 400, data="{", content_type="application/json")
    call("producer", "POST", "/v1/events", 415, data="x", content_type="text/plain")
    call("producer", "GET", "/v1/events", 403)
    call(None, "GET", "/v1/events", 401)

    # Marketers.
    call("marketer", "POST", "/v1/rules/validate", 200, json={"rule": "opened email"})
    call("marketer", "POST", "/v1/rules/validate", 422, json={"rule": "opened emial"})
    call("marketer", "POST", "/v1/segments", 201, json={"name": "Blocked", "kind": "static"})
    call("marketer", "POST", "/v1/segments", 201, json={"name": "Engaged", "rule": RULE})
    call("marketer", "POST", "/v1/segments", 409, json={"name": "Engaged", "rule": RULE})
    call("marketer", "POST", "/v1/segments/preview", 200, json={"rule": "opened email"})
    call("marketer", "GET", "/v1/segments", 200)
    etag = call("marketer", "GET", "/v1/segments/engaged", 200).headers["ETag"]
    changed = {"rule": "opened email within 2 days"}
    call("marketer", "PUT", "/v1/segments/engaged", 428, json=changed)
    call("marketer", "PUT", "/v1/segments/engaged", 412, json=changed, headers={"If-Match": '"9"'})
    call("marketer", "PUT", "/v1/segments/engaged", 200, json=changed, headers={"If-Match": etag})
    call("marketer", "POST", "/v1/segments/blocked/members", 200, json={"add": ["bob"]})
    call("marketer", "POST", "/v1/segments/engaged/members", 409, json={"add": ["bob"]})
    call("marketer", "GET", "/v1/segments/nobody", 404)

    # Time passes: ann leaves with no new event.
    clock.advance(2 * DAY)
    service.catch_up()

    # Auditors.
    call("auditor", "GET", "/v1/events?limit=2", 200)
    call("auditor", "GET", "/v1/events?limit=0", 400)
    call("auditor", "GET", "/v1/contacts/bob", 200)
    call("auditor", "GET", "/v1/contacts/bob/events", 200)
    call("auditor", "GET", "/v1/contacts/ann/segments?at=2026-01-01T00:00:00.000Z", 200)
    call("auditor", "GET", "/v1/contacts/nobody", 404)
    call("auditor", "GET", "/v1/segments/engaged/members", 200)
    call("auditor", "GET", "/v1/segments/engaged/transitions", 200)
    call("auditor", "GET", "/v1/segments/engaged/transitions?contact=ann", 200)
    call("auditor", "GET", "/v1/segments/engaged/explain/ann", 200)
    call("auditor", "GET", "/v1/segments/engaged/explain/bob?evidence=1", 200)
    call("auditor", "POST", "/v1/segments", 403, json={"name": "X", "kind": "static"})

    # Admins, and the archive.
    assert call("admin", "GET", "/v1/keys", 200).json["keys"]
    made = call("admin", "POST", "/v1/keys", 201, json={"role": "auditor", "name": "temp"})
    call("admin", "DELETE", f"/v1/keys/{made.json['key_id']}", 200)
    call("admin", "DELETE", "/v1/keys/nope", 404)
    call("marketer", "DELETE", "/v1/segments/engaged", 200)
    call(None, "GET", "/healthz", 200)

    # The day went through every documented /v1 route.
    routes = {(m, p) for m, p, _ in call.seen}
    spec_routes = {
        (m.upper(), p)
        for p, ops in app.extensions["openapi"]["paths"].items()
        for m in ops
        if p.startswith("/v1/")
    }
    assert spec_routes <= routes, spec_routes - routes
