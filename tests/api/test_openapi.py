"""The OpenAPI document covers every route, and /docs works without the network."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

from grammar import parse, to_json
from grammar.ast import segment_refs
from tests.grammar.strategies import rules
from tests.grammar.valid_rules import VALID

# Every character str.strip() takes off, and some around them, at either end of an id.
SPACES = [
    f"{a}x{b}"
    for a in ("", " ", "\x85", "\xa0", "\u3000", "\ufeff", "\u2028")
    for b in ("", " ", "\u200a", "\u202f", "\u180e")
]


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


def test_the_document_is_valid_openapi(client):
    validate(client.get("/openapi.json").json)


def test_the_docs_page_loads_its_assets_from_the_service(client):
    page = client.get("/docs").get_data(as_text=True)
    # Nor its online validator: Swagger UI would fetch a badge from validator.swagger.io,
    # telling it the document's URL, wherever the service is not on localhost.
    assert "validatorUrl: null" in page
    # Nor keep a key typed into it in the browser's storage, nor be framed by another site.
    assert "persistAuthorization" not in page
    docs = client.get("/docs")
    assert docs.headers["X-Frame-Options"] == "DENY"
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
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
    # Query parameters as the routes read them; an empty one is refused.
    members = spec["paths"]["/v1/segments/{segment_id}/members"]["get"]
    query = {p["name"]: p["schema"] for p in members["parameters"] if p["in"] == "query"}
    assert query == {
        "at": {"type": "string", "format": "date-time"},
        "cursor": {"type": "string", "minLength": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    }
    # Every body may come too large or in another type than JSON.
    for path, method in (("/v1/segments", "post"), ("/v1/rules/validate", "post")):
        assert {"413", "415"} <= set(spec["paths"][path][method]["responses"])


def _id_as_described(text: str, in_urls: bool) -> bool:
    """What the API takes as an id, in words: 1-200 characters, no control character, nothing
    str.strip() would remove; a contact id no '/' either, and not '.' or '..'."""
    ok = 1 <= len(text) <= 200 and not re.search(r"[\x00-\x1f\x7f]", text) and text == text.strip()
    return ok and not (in_urls and ("/" in text or text in (".", "..")))


# The app is shared by the examples: each posts events of ids of its own, or repeats.
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=8)
    | st.sampled_from(SPACES)
    | st.text("ab", min_size=199, max_size=201)
)
def test_the_documented_id_patterns_are_the_ids_the_api_takes(client, api, text):
    spec = client.get("/openapi.json").json
    fields = spec["components"]["schemas"]["EventIn"]["properties"]
    for name, in_urls in (("event_id", False), ("contact_id", True)):
        field = fields[name]
        # The document's ECMA-262 pattern: `$` after no line break, which ids cannot hold.
        documented = (
            re.fullmatch(field["pattern"].removesuffix("$"), text) is not None
            and field["minLength"] <= len(text) <= field["maxLength"]
        )
        assert documented == _id_as_described(text, in_urls)
        sent = {"contact_id": "c", "type": "email_opened", name: text}
        taken = api("producer").post("/v1/events", json=sent).status_code
        assert (taken in (200, 201)) == _id_as_described(text, in_urls), taken


def test_an_explanation_has_the_documented_shape(client, api):
    spec = client.get("/openapi.json").json
    node = spec["components"]["schemas"]["ExplanationOut"]["properties"]
    for event in (
        {"contact_id": "ann", "type": "purchased", "properties": {"amount": 5}},
        {"contact_id": "ann", "type": "contact_updated", "properties": {"country": "DE"}},
    ):
        assert api("producer").post("/v1/events", json=event).status_code == 201
    marketer = api("marketer")
    assert marketer.post("/v1/segments", json={"name": "VIP", "kind": "static"}).status_code == 201
    rule = (
        "(opened email within 7 days or not clicked email within 1 day) and total amount of"
        ' purchased >= 5 and last purchased less than 1 day ago and country is "DE"'
        ' and not in segment "VIP"'
    )
    assert marketer.post("/v1/segments", json={"name": "All", "rule": rule}).status_code == 201
    tree = api("auditor").get("/v1/segments/all/explain/ann").json["explanation"]
    kinds = set()

    def walk(n):
        assert set(n) == set(node)
        kinds.add(n["kind"])
        for child in n["children"]:
            walk(child)

    walk(tree)
    assert kinds == set(node["kind"]["enum"])
    assert tree["value"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", tree["next_change"])


def _validator(spec, component):
    """A validator of one of the document's components, its references resolved in the
    document (OpenAPI 3.0's dialect: `nullable`, `discriminator`)."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def test_every_sentence_of_the_rule_language_answers_with_a_documented_ast(client, api):
    spec = client.get("/openapi.json").json
    ast = spec["components"]["schemas"]["RuleOut"]["properties"]["ast"]
    assert ast["allOf"] == [{"$ref": "#/components/schemas/RuleNode"}]
    validator = _validator(spec, "RuleNode")
    marketer = api("marketer")
    for name in sorted(set().union(*(segment_refs(node) for _, node in VALID))):
        # A name and its id ("Engaged leads", "engaged-leads") are one segment: 409.
        created = marketer.post("/v1/segments", json={"name": name, "kind": "static"})
        assert created.status_code in (201, 409)
    kinds = set()
    for text, _ in VALID:
        answer = marketer.post("/v1/rules/validate", json={"rule": text})
        assert answer.status_code == 200, (text, answer.json)
        tree = answer.json["ast"]
        assert not list(validator.iter_errors(tree)), text
        kinds |= set(re.findall(r"'kind': '(\w+)'", repr(tree)))
    mapping = spec["components"]["schemas"]["RuleNode"]["discriminator"]["mapping"]
    # The sentences use every kind of node the document names (and a few parts besides).
    assert set(mapping) <= kinds
    assert kinds - set(mapping) == {"event", "count", "duration", "date"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules)
def test_every_ast_the_grammar_can_build_is_documented(client, rule):
    validator = _validator(client.get("/openapi.json").json, "RuleNode")
    assert not list(validator.iter_errors(to_json(rule)))


def test_the_documented_ast_refuses_what_the_grammar_never_writes(client):
    validator = _validator(client.get("/openapi.json").json, "RuleNode")
    good = to_json(parse("total amount of purchased where coupon is unknown >= 5"))
    assert validator.is_valid(good)
    for path, bad in (
        ((), ("kind", "sum")),
        ((), ("op", "==")),
        ((), ("value", "5")),
        ((), ("extra", 1)),
        (("event",), ("type", 3)),
        (("event", "filter"), ("known", None)),
        (("event", "filter"), ("span", {"line": 0, "column": 1, "end_line": 1, "end_column": 2})),
    ):
        node = tree = json.loads(json.dumps(good))
        for key in path:
            node = node[key]
        node[bad[0]] = bad[1]
        assert not validator.is_valid(tree), (path, bad)
    missing = json.loads(json.dumps(good))
    del missing["window"]
    assert not validator.is_valid(missing)
