"""Segments over HTTP: define, validate, change with If-Match, archive, static lists, previews,
membership now and as of an instant, transitions and explanations."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from api.schemas import format_instant
from api.segments import explanation_json
from engine.evaluate import Explanation

DAY = 86_400_000


def ingest(api, *events):
    response = api("producer").post("/v1/events", json={"events": list(events)})
    assert response.status_code in (200, 201), response.json
    return response


def define(api, name, rule=None, **extra):
    body = {"name": name, **({"rule": rule} if rule else {}), **extra}
    return api("marketer").post("/v1/segments", json=body)


def members(api, segment_id):
    page = api("auditor").get(f"/v1/segments/{segment_id}/members").json
    return [m["contact_id"] for m in page["members"]]


def test_validate_gives_canonical_text_ast_and_what_the_rule_reads(api):
    response = api("marketer").post(
        "/v1/rules/validate", json={"rule": 'Opened Email IN THE LAST 7 days and country is "DE"'}
    )
    assert response.status_code == 200
    body = response.json
    assert body["valid"] is True
    assert body["rule"] == 'opened email within 7 days and country is "DE"'
    assert body["ast"]["kind"] == "and"
    assert body["reads"] == {
        "event_types": ["email_opened"],
        "properties": ["country"],
        "segments": [],
        "longest_window_ms": 7 * DAY,
    }
    assert body["notes"] == []


def test_validate_notes_a_condition_that_joins_the_rule_after_a_where(api):
    rule = 'purchased where amount > 100 and sku is "B"'
    body = api("marketer").post("/v1/rules/validate", json={"rule": rule}).json
    assert body["valid"] is True
    (note,) = body["notes"]
    assert (note["field"], note["line"], note["column"]) == ("rule", 1, 34)
    assert note["hint"].endswith('write where (amount > 100 and sku is "B")')


def test_defining_or_changing_a_rule_answers_its_notes_too(api):
    rule = 'purchased where amount > 100 and sku is "B"'
    created = define(api, "Big B", rule)
    assert [(n["line"], n["column"]) for n in created.json["notes"]] == [(1, 34)]
    assert "notes" not in api("auditor").get("/v1/segments/big-b").json
    changed = api("marketer").put(
        "/v1/segments/big-b",
        json={"rule": 'purchased where (amount > 100 and sku is "B")'},
        headers={"If-Match": '"1"'},
    )
    assert changed.json["notes"] == []
    assert define(api, "VIP", kind="static").json.get("notes") is None


def test_an_invalid_rule_gets_every_problem_with_line_column_and_hint(api):
    response = api("marketer").post(
        "/v1/rules/validate", json={"rule": 'opened email withn 7 days\nand country iz "DE"'}
    )
    assert response.status_code == 422
    errors = response.json["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(1, 14), (2, 13)]
    assert [e["hint"] for e in errors] == ['did you mean "within"?', 'did you mean "is"?']


def test_creating_a_segment_evaluates_existing_contacts_at_once(api, clock):
    ingest(
        api,
        {"contact_id": "ann", "type": "email_opened"},
        {"contact_id": "bob", "type": "page_viewed"},
    )
    response = define(api, "Engaged leads", "opened email within 7 days")
    assert response.status_code == 201
    assert response.headers["Location"] == "/v1/segments/engaged-leads"
    assert response.headers["ETag"] == '"1"'
    assert response.json["id"] == "engaged-leads"
    assert response.json["member_count"] == 1
    members = api("auditor").get("/v1/segments/engaged-leads/members").json
    assert [m["contact_id"] for m in members["members"]] == ["ann"]
    assert members["members"][0]["since"] == format_instant(clock())


def test_a_contact_enters_when_an_event_qualifies_and_leaves_when_the_window_ends(app, api, clock):
    define(api, "Openers", "opened email within 7 days")
    ingest(api, {"contact_id": "ann", "type": "email_opened"})
    opened = clock()
    assert [s["id"] for s in api("auditor").get("/v1/contacts/ann/segments").json["segments"]] == [
        "openers"
    ]
    clock.advance(7 * DAY)
    app.extensions["segments"].service.catch_up()  # what the scheduler does when the time comes
    assert api("auditor").get("/v1/contacts/ann/segments").json["segments"] == []
    transitions = api("auditor").get("/v1/segments/openers/transitions").json["transitions"]
    assert [(t["kind"], t["at"], t["cause"]["kind"]) for t in transitions] == [
        ("entered", format_instant(opened), "event"),
        ("exited", format_instant(opened + 7 * DAY), "time"),
    ]
    assert transitions[1]["cause"]["boundary"] == format_instant(opened + 7 * DAY)
    # As of a moment inside the window, ann was a member.
    at = format_instant(opened + DAY)
    members = api("auditor").get(f"/v1/segments/openers/members?at={at}").json["members"]
    assert [m["contact_id"] for m in members] == ["ann"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Café crème", "cafe-creme"),
        ("Straße", "strasse"),
        ("Покупатели", "покупатели"),
        ("日本語", "日本語"),
    ],
)
def test_names_in_any_script_make_ids(api, name, slug):
    response = api("marketer").post("/v1/segments", json={"name": name, "rule": "purchased"})
    assert response.status_code == 201
    assert response.json["id"] == slug
    assert api("auditor").get(f"/v1/segments/{quote(slug)}").json["name"] == name
    referring = {"name": "Fans", "rule": f'in segment "{name}"'}
    assert api("marketer").post("/v1/segments", json=referring).status_code == 201


def test_a_name_whose_id_would_be_over_200_characters_is_refused(api):
    assert define(api, "ß" * 100, "purchased").status_code == 201  # "ss" * 100
    response = define(api, "\ufdfa" * 12, "purchased")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "name"
    assert "an id of 216 characters" in response.json["detail"]


def test_duplicate_names_conflict(api):
    assert define(api, "Buyers", "purchased").status_code == 201
    response = define(api, "buyers", "purchased within 7 days")
    assert response.status_code == 409
    assert response.json["errors"][0]["field"] == "name"
    assert "archived" not in response.json["detail"]
    api("marketer").delete("/v1/segments/buyers")
    again = define(api, "Buyers", "purchased")
    assert again.status_code == 409
    assert "archived" in again.json["detail"]


def test_bad_segment_bodies(api):
    assert define(api, "x").status_code == 422  # dynamic without a rule
    assert define(api, "x", "purchased", kind="static").status_code == 422
    assert define(api, "!!!", "purchased").status_code == 422
    response = define(api, "Refs", 'in segment "nowhere"')
    assert response.status_code == 422
    assert "nowhere" in response.json["errors"][0]["message"]
    assert api("auditor").get("/v1/segments").json["segments"] == []


def test_putting_the_rule_a_segment_has_makes_no_new_version(api):
    define(api, "Buyers", "purchased within 30 days")
    log = api("auditor").get("/v1/events").json["events"]
    same = api("marketer").put(
        "/v1/segments/buyers",
        json={"rule": "  PURCHASED   within 30 days "},  # the same rule, written otherwise
        headers={"If-Match": '"1"'},
    )
    assert same.status_code == 200
    assert same.headers["ETag"] == '"1"'
    assert [v["rule"] for v in same.json["versions"]] == ["purchased within 30 days"]
    assert api("auditor").get("/v1/events").json["events"] == log
    # A segment it refers to, named otherwise: the same segment.
    define(api, "Engaged buyers", 'in segment "Buyers" and opened email')
    log = api("auditor").get("/v1/events").json["events"]
    for rule in ("in segment buyers and opened email", 'IN SEGMENT "BUYERS" and opened email'):
        same = api("marketer").put(
            "/v1/segments/engaged-buyers", json={"rule": rule}, headers={"If-Match": '"1"'}
        )
        assert same.status_code == 200
        assert same.headers["ETag"] == '"1"'
    assert api("auditor").get("/v1/events").json["events"] == log


def test_a_new_rule_version_needs_the_current_etag(api):
    define(api, "Buyers", "purchased")
    put = api("marketer").put
    assert put("/v1/segments/buyers", json={"rule": "purchased within 30 days"}).status_code == 428
    stale = put(
        "/v1/segments/buyers",
        json={"rule": "purchased within 30 days"},
        headers={"If-Match": '"7"'},
    )
    assert stale.status_code == 412
    ok = put(
        "/v1/segments/buyers",
        json={"rule": "purchased within 30 days"},
        headers={"If-Match": '"1"'},
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] == '"2"'
    assert [v["rule"] for v in ok.json["versions"]] == ["purchased", "purchased within 30 days"]
    assert (
        put(
            "/v1/segments/nobody", json={"rule": "purchased"}, headers={"If-Match": '"1"'}
        ).status_code
        == 404
    )


def test_cycles_are_refused(api):
    define(api, "A", "purchased")
    define(api, "B", 'in segment "A"')
    response = api("marketer").put(
        "/v1/segments/a", json={"rule": 'in segment "B"'}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 422
    assert "cycle" in response.json["errors"][0]["message"]
    kept = api("marketer").get("/v1/segments/a").json
    assert (kept["version"], kept["rule"]) == (1, "purchased")


def test_archiving_removes_members_and_refuses_segments_in_use(api):
    ingest(api, {"contact_id": "ann", "type": "purchased"})
    define(api, "Buyers", "purchased")
    define(api, "Fans", 'in segment "Buyers"')
    assert api("marketer").delete("/v1/segments/buyers").status_code == 409
    assert api("marketer").delete("/v1/segments/fans").status_code == 200
    archived = api("marketer").delete("/v1/segments/buyers")
    assert archived.status_code == 200
    assert archived.json["archived_at"] is not None
    assert archived.json["member_count"] == 0
    assert api("auditor").get("/v1/segments").json["segments"] == []
    assert len(api("auditor").get("/v1/segments?archived=true").json["segments"]) == 2


def test_archiving_with_if_match_needs_the_current_version(api):
    define(api, "Buyers", "purchased")
    api("marketer").put(
        "/v1/segments/buyers", json={"rule": "clicked email"}, headers={"If-Match": '"1"'}
    )
    for stale in ('"1"', 'W/"2"'):
        refused = api("marketer").delete("/v1/segments/buyers", headers={"If-Match": stale})
        assert refused.status_code == 412
    for stale in ('"02"', '"None"', 'W/"2", "1"', '"a", "1"'):
        refused = api("marketer").delete("/v1/segments/buyers", headers={"If-Match": stale})
        assert (refused.status_code, refused.json["current_version"]) == (412, 2), stale
    for bad in ("x", "2", '"2" "1"', '"2"x', ","):  # ETags are quoted, in a list by commas
        refused = api("marketer").delete("/v1/segments/buyers", headers={"If-Match": bad})
        assert refused.status_code == 400, bad
        assert refused.json["errors"][0]["field"] == "If-Match"
    assert api("auditor").get("/v1/segments/buyers").json["archived_at"] is None
    changed = api("marketer").put(
        "/v1/segments/buyers", json={"rule": "opened email"}, headers={"If-Match": '"1", "2",'}
    )
    assert (changed.status_code, changed.headers["ETag"]) == (200, '"3"')  # "2", empty: ignored
    archived = api("marketer").delete(
        "/v1/segments/buyers", headers={"If-Match": ', W/"3",  "7",, "3"'}
    )
    assert archived.status_code == 200
    refused = api("marketer").delete("/v1/segments/buyers", headers={"If-Match": '"1"'})
    assert refused.status_code == 409  # archived: said so, whatever the ETag


def test_archiving_with_the_current_etag(api):
    define(api, "Buyers", "purchased")
    api("marketer").put(
        "/v1/segments/buyers", json={"rule": "clicked email"}, headers={"If-Match": '"1"'}
    )
    archived = api("marketer").delete("/v1/segments/buyers", headers={"If-Match": '"2"'})
    assert archived.status_code == 200


def test_static_lists_follow_their_edits(api):
    define(api, "VIP", kind="static")
    edit = api("marketer").post("/v1/segments/vip/members", json={"add": ["ann", "bob"]})
    assert edit.status_code == 200
    assert edit.json["member_count"] == 2
    api("marketer").post("/v1/segments/vip/members", json={"remove": ["bob"]})
    members = api("auditor").get("/v1/segments/vip/members").json["members"]
    assert [m["contact_id"] for m in members] == ["ann"]
    explained = api("auditor").get("/v1/segments/vip/explain/ann").json
    transitions = api("auditor").get("/v1/segments/vip/transitions").json["transitions"]
    assert (explained["member"], explained["rule_version"]) == (True, 1)
    assert {t["rule_version"] for t in transitions} == {1}
    # A contact only a list names (no event yet) is a contact all the same.
    ann = api("auditor").get("/v1/contacts/ann")
    assert ann.status_code == 200, ann.json
    assert (ann.json["event_count"], ann.json["exists_from"], ann.json["properties"]) == (
        0,
        None,
        {},
    )
    assert [seg["id"] for seg in ann.json["segments"]] == ["vip"]
    assert api("auditor").get("/v1/contacts/ann/events").json["events"] == []
    assert api("auditor").get("/v1/contacts/bob").status_code == 404  # removed: in no list
    assert api("marketer").post("/v1/segments/vip/members", json={}).status_code == 422
    define(api, "Buyers", "purchased")
    assert (
        api("marketer").post("/v1/segments/buyers/members", json={"add": ["x"]}).status_code == 409
    )


def test_a_static_list_edit_stores_only_what_changes(api):
    """A list synced again and again from a CRM does not fill the log with no-ops."""
    define(api, "VIP", kind="static")
    marketer, auditor = api("marketer"), api("auditor")

    def edits() -> list[list]:
        log = auditor.get("/v1/events?limit=1000").json["events"]
        return [[e["type"], e["data"]["contacts"]] for e in log if "members" in e["type"]]

    marketer.post("/v1/segments/vip/members", json={"add": ["ann", "bob", "ann"]})
    again = marketer.post("/v1/segments/vip/members", json={"add": ["bob", "ann"]})
    assert again.status_code == 200 and again.json["member_count"] == 2
    marketer.post("/v1/segments/vip/members", json={"add": ["bob", "cid"], "remove": ["dan"]})
    marketer.post("/v1/segments/vip/members", json={"remove": ["ann", "dan", "ann"]})
    assert edits() == [
        ["segment_members_added", ["ann", "bob"]],
        ["segment_members_added", ["cid"]],
        ["segment_members_removed", ["ann"]],
    ]
    members = auditor.get("/v1/segments/vip/members").json["members"]
    assert [m["contact_id"] for m in members] == ["bob", "cid"]


def test_preview_counts_without_saving(api, clock):
    ingest(
        api,
        {"contact_id": "ann", "type": "contact_updated", "properties": {"lead_score": 70}},
        {"contact_id": "bob", "type": "contact_updated", "properties": {"lead_score": 20}},
        {"contact_id": "cem", "type": "contact_updated", "properties": {"lead_score": 90}},
    )
    response = api("marketer").post("/v1/segments/preview", json={"rule": "lead_score >= 50"})
    assert response.status_code == 200
    assert response.json["count"] == 2
    assert response.json["sample"] == ["ann", "cem"]
    assert response.json["notes"] == []
    noted = api("marketer").post(
        "/v1/segments/preview",
        json={"rule": "  PURCHASED where amount > 100\n  and lead_score >= 50"},
    )
    assert [(n["line"], n["column"]) for n in noted.json["notes"]] == [(2, 7)]  # as written
    earlier = format_instant(clock() - 1)
    assert (
        api("marketer")
        .post("/v1/segments/preview", json={"rule": "lead_score >= 50", "at": earlier})
        .json["count"]
        == 0
    )
    assert api("auditor").get("/v1/segments").json["segments"] == []


def test_explain_shows_the_evidence(api, clock):
    ingest(api, {"event_id": "o-1", "contact_id": "ann", "type": "email_opened"})
    define(api, "Openers", "opened email within 7 days and not purchased within 90 days")
    body = api("auditor").get("/v1/segments/openers/explain/ann").json
    assert body["member"] is True
    assert body["rule_version"] == 1
    tree = body["explanation"]
    rule = tree["children"][0]
    opened, not_purchased = rule["children"]
    assert opened["value"] is True
    assert opened["details"]["events"][0]["event_id"] == "o-1"
    assert opened["details"]["count"] == 1
    assert not_purchased["value"] is True
    assert tree["next_change"] == format_instant(clock() + 7 * DAY)
    before = format_instant(clock() - 1)
    assert (
        api("auditor").get(f"/v1/segments/openers/explain/ann?at={before}").json["member"] is False
    )


def test_explain_shows_a_property_value_as_it_was_set(api, clock):
    # Its keys may be those of the explanation's own instants: they stay numbers.
    window = {"after": 1000, "until": 2000, "occurred_at": [7], "threshold": 3}
    ingest(
        api,
        {"contact_id": "ann", "type": "contact_updated", "properties": {"window": window}},
    )
    define(api, "Windowed", "window is known")
    details = api("auditor").get("/v1/segments/windowed/explain/ann").json["explanation"]
    leaf = details["children"][0]["details"]
    assert leaf["value"] == window
    assert leaf["set_by"]["occurred_at"] == format_instant(clock())


def test_explain_writes_a_total_beyond_a_double_as_null(api, clock):
    for _ in range(2):
        ingest(api, {"contact_id": "ann", "type": "purchased", "properties": {"amount": 1e308}})
    define(api, "Big spenders", "total amount of purchased >= 100")
    response = api("auditor").get("/v1/segments/big-spenders/explain/ann")
    body = json.loads(response.get_data(as_text=True), parse_constant=lambda c: 1 / 0)
    assert body["member"] is True
    details = body["explanation"]["children"][0]["details"]
    assert details["aggregate"] is None
    assert details["count"] == 2


def test_explain_lists_the_latest_events_of_a_clause_and_counts_them_all(api, clock):
    for i in range(5):
        ingest(api, {"event_id": f"o-{i}", "contact_id": "ann", "type": "email_opened"})
        clock.advance(1)
    define(api, "Openers", "opened email at least 3 times")
    url = "/v1/segments/openers/explain/ann"

    def clause(query=""):
        body = api("auditor").get(url + query).json
        return body["explanation"]["children"][0]["details"]

    assert clause()["count"] == 5
    assert [e["event_id"] for e in clause()["events"]] == [f"o-{i}" for i in range(5)]
    shown = clause("?evidence=2")
    assert shown["count"] == 5
    assert [e["event_id"] for e in shown["events"]] == ["o-3", "o-4"]
    for bad in ("0", "100001", "all"):
        refused = api("auditor").get(f"{url}?evidence={bad}")
        assert refused.status_code == 400
        assert refused.json["errors"][0]["field"] == "evidence"


def test_members_page_by_opaque_cursor_now_and_as_of_an_instant(api, clock):
    define(api, "Openers", "opened email within 7 days")
    ingest(api, *({"contact_id": f"c{i:02d}", "type": "email_opened"} for i in range(7)))
    at = format_instant(clock())
    clock.advance(DAY)
    ingest(api, {"contact_id": "late", "type": "email_opened"})

    def all_pages(query):
        seen, cursor = [], None
        while True:
            url = f"/v1/segments/openers/members?limit=3{query}"
            body = api("auditor").get(url + (f"&cursor={cursor}" if cursor else "")).json
            seen.append([m["contact_id"] for m in body["members"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    now = all_pages("")
    assert now == [["c00", "c01", "c02"], ["c03", "c04", "c05"], ["c06", "late"]]
    assert all_pages(f"&at={at}") == [["c00", "c01", "c02"], ["c03", "c04", "c05"], ["c06"]]
    bad = api("auditor").get("/v1/segments/openers/members?cursor=%%%")
    assert bad.status_code == 400


def test_a_cursor_pages_only_the_list_that_gave_it(api, clock):
    define(api, "Openers", "opened email")
    define(api, "Readers", "opened email")
    define(api, "Zeta", "opened email")
    ingest(api, *({"contact_id": f"c{i}", "type": "email_opened"} for i in range(3)))
    read = api("auditor").get
    members = read("/v1/segments/openers/members?limit=1").json["next_cursor"]
    transitions = read("/v1/segments/openers/transitions?limit=1").json["next_cursor"]
    events = read("/v1/events?limit=1").json["next_cursor"]
    segments = read("/v1/segments?limit=1").json["next_cursor"]
    for url, cursor in [
        ("/v1/segments/readers/members", members),  # another segment's members
        ("/v1/segments", members),  # a contact id, read as a segment id
        ("/v1/segments/openers/transitions", events),  # a position, read as a transition id
        ("/v1/contacts/c1/events", events),
        ("/v1/segments/openers/members", segments),
        ("/v1/events", transitions),
    ]:
        refused = read(f"{url}?cursor={cursor}")
        assert refused.status_code == 400, (url, refused.json)
        assert refused.json["errors"][0]["field"] == "cursor"
    assert read(f"/v1/segments/openers/members?limit=1&cursor={members}").json["members"] == [
        {"contact_id": "c1", "since": format_instant(clock())}
    ]


def test_properties_named_in_any_script_work_in_rules(api, clock):
    ingest(
        api,
        {"contact_id": "ana", "type": "contact_updated", "properties": {"país": "ES", "größe": 3}},
        {"contact_id": "bo", "type": "contact_updated", "properties": {"país": "DE"}},
    )
    rule = 'país is "es" and größe >= 3'
    checked = api("marketer").post("/v1/rules/validate", json={"rule": rule}).json
    assert checked["rule"] == 'país is "es" and größe >= 3'
    assert sorted(checked["reads"]["properties"]) == ["größe", "país"]
    assert define(api, "Spain", rule).status_code == 201  # every contact, set-wise
    assert members(api, "spain") == ["ana"]
    ingest(
        api,
        {"contact_id": "bo", "type": "contact_updated", "properties": {"país": "ES", "größe": 4}},
    )
    assert members(api, "spain") == ["ana", "bo"]  # one contact at a time
    preview = api("marketer").post("/v1/segments/preview", json={"rule": rule}).json
    assert preview["count"] == 2


def test_properties_named_with_spaces_dots_or_keywords_are_named_quoted(api, clock):
    odd = {"lead score": 60, "utm.source": "ads", "$email": "a@x.io", "a[0]": 1, "total": 5}
    ingest(
        api,
        {"contact_id": "ana", "type": "contact_updated", "properties": odd},
        {"contact_id": "ana", "type": "purchased", "properties": {"order value": 70}},
        {"contact_id": "bo", "type": "contact_updated", "properties": {"lead score": 10}},
        {"contact_id": "bo", "type": "purchased", "properties": {"order value": 20}},
    )
    rule = (
        'property "lead score" >= 50 and property "utm.source" is "ads"'
        ' and property "$email" ends with "@x.io" and property "a[0]" is 1 and property "total" > 4'
        ' and purchased where property "order value" > 50'
        ' and total property "order value" of purchased >= 70'
    )
    checked = api("marketer").post("/v1/rules/validate", json={"rule": rule}).json
    assert checked["rule"] == rule
    assert define(api, "Odd", rule).status_code == 201  # every contact, set-wise
    assert members(api, "odd") == ["ana"]
    preview = api("marketer").post("/v1/segments/preview", json={"rule": rule}).json
    assert preview["sample"] == ["ana"]
    ingest(api, {"contact_id": "ana", "type": "contact_updated", "properties": {"a[0]": 2}})
    assert members(api, "odd") == []  # one contact at a time
    ingest(api, {"contact_id": "bo", "type": "contact_updated", "properties": odd})
    ingest(api, {"contact_id": "bo", "type": "purchased", "properties": {"order value": 55}})
    assert members(api, "odd") == ["bo"]
    explained = api("auditor").get("/v1/segments/odd/explain/bo").json
    assert explained["member"] is True


def test_totals_add_up_the_amounts_as_written(api):
    # 10.1 + 20.2 in binary floats is 30.299999999999997: short of 30.3 by a rounding error.
    ingest(
        api,
        {"contact_id": "ann", "type": "purchased", "properties": {"amount": 10.1}},
        {"contact_id": "ann", "type": "purchased", "properties": {"amount": 20.2}},
        {"contact_id": "bob", "type": "purchased", "properties": {"amount": 30.29}},
    )
    rule = "total amount of purchased >= 30.3"
    preview = api("marketer").post("/v1/segments/preview", json={"rule": rule}).json
    assert (preview["count"], preview["sample"]) == (1, ["ann"])
    define(api, "Big spenders", rule)
    members = api("auditor").get("/v1/segments/big-spenders/members").json["members"]
    assert [m["contact_id"] for m in members] == ["ann"]
    define(api, "Average", "average amount of purchased = 15.15")
    members = api("auditor").get("/v1/segments/average/members").json["members"]
    assert [m["contact_id"] for m in members] == ["ann"]


def test_text_matches_however_its_accents_are_encoded(api):
    # Some systems send "Zürich" with a combining umlaut (NFD); a marketer types it whole.
    ingest(
        api,
        {"contact_id": "ana", "type": "contact_updated", "properties": {"city": "Zu\u0308rich"}},
        {"contact_id": "ana", "type": "page_viewed", "properties": {"url": "/Zu\u0308rich/x"}},
        {"contact_id": "bo", "type": "contact_updated", "properties": {"city": "Zurich"}},
    )
    rule = 'city is "zürich" and visited page where url contains "zürich"'
    preview = api("marketer").post("/v1/segments/preview", json={"rule": rule}).json
    assert preview["sample"] == ["ana"]
    define(api, "Zurich", rule)
    assert members(api, "zurich") == ["ana"]
    ingest(api, {"contact_id": "bo", "type": "contact_updated", "properties": {"city": "ZÜRICH"}})
    ingest(api, {"contact_id": "bo", "type": "page_viewed", "properties": {"url": "/ZÜRICH"}})
    assert members(api, "zurich") == ["ana", "bo"]


def test_evidence_is_bounded_per_clause_and_in_all():
    def clause(n: int, name: str) -> Explanation:
        events = [{"event_id": f"{name}-{i}", "position": i, "occurred_at": i} for i in range(n)]
        return Explanation("event", name, True, None, {"count": n, "events": events})

    tree = Explanation("or", "x", True, None, {}, (clause(4, "a"), clause(9, "b"), clause(3, "c")))
    shown = explanation_json(tree, evidence=5, total=7)["children"]
    assert [[e["event_id"] for e in c["details"]["events"]] for c in shown] == [
        ["a-0", "a-1", "a-2", "a-3"],  # all 4: fewer than 5
        ["b-6", "b-7", "b-8"],  # the latest 3: 7 in all
        [],
    ]
    assert [c["details"]["count"] for c in shown] == [4, 9, 3]  # counted whole still
