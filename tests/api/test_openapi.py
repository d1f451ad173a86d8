"""The OpenAPI document covers every route, and /docs works without the network."""

from __future__ import annotations

import json
import re


def test_every_route_is_in_the_document(app, client):
    spec = client.get("/openapi.json").json
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes
    assert routes <= documented
    assert spec["openapi"].startswith("3.")
    events = spec["paths"]["/v1/events"]["post"]
    assert events["security"] == [{"bearer": []}]
    assert "401" in events["responses"] and "422" in events["responses"]
    assert "EventIn" in spec["components"]["schemas"]


def test_the_docs_page_loads_its_assets_from_the_service(client):
    page = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/docs/") for a in assets)
    for asset in assets:
        with client.get(asset) as response:
            assert response.status_code == 200
    # Nothing else of the package: its own demo page would load a document from the Internet.
    for other in ("/docs/index.html", "/docs/index.j2", "/docs/oauth2-redirect.html"):
        assert client.get(other).status_code == 404


def test_the_document_says_what_the_service_does(client):
    spec = client.get("/openapi.json").json
    events = spec["paths"]["/v1/events"]["post"]
    body = events["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"] == [
        {"$ref": "#/components/schemas/EventIn"},
        {"$ref": "#/components/schemas/EventBatchIn"},
    ]
    assert {"200", "201", "202", "409"} <= set(events["responses"])
    assert spec["components"]["schemas"]["EventIn"]["properties"]["occurred_at"] == {
        "type": "string",
        "format": "date-time",
        "description": "event time; the time of receipt if absent",
    }
    # Patterns in ECMA-262, which JSON Schema validators use: no Python-only \Z.
    assert "\\Z" not in json.dumps(spec)
    assert re.fullmatch(
        spec["components"]["schemas"]["EventIn"]["properties"]["type"]["pattern"], "email_opened"
    )
    segment = spec["paths"]["/v1/segments/{segment_id}"]
    if_match = {
        p["name"]: p["required"] for p in segment["put"]["parameters"] if p["in"] == "header"
    }
    assert if_match == {"If-Match": True}
    assert [p["required"] for p in segment["delete"]["parameters"] if p["in"] == "header"] == [
        False
    ]
    assert "ETag" in segment["get"]["responses"]["200"]["headers"]
    assert "412" in segment["delete"]["responses"]
