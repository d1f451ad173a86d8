"""Input at the edges (found by fuzzing the API): instants beyond the years 0001-9999, numbers
of many digits, lone surrogates, deep nesting, odd characters. Each is a clear 4xx that
changes nothing, or is taken and then read back without an error."""

from __future__ import annotations

import base64
import json

import pytest

from api.scheduler import DeadlineScheduler
from api.schemas import LAST_INSTANT

JSON = "application/json"


def log_size(api) -> int:
    return len(api("auditor").get("/v1/events?limit=1000").json["events"])


def cursor(value: str | bytes, path: str | None = None) -> str:
    """A cursor as the API writes them (of the list at `path`), or any bytes."""
    raw = value if isinstance(value, bytes) else value.encode()
    if path is not None:
        raw = b'["' + path.encode() + b'", ' + raw + b"]"
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def post_raw(api, url: str, text: str):
    return api("admin").post(url, data=text.encode(), content_type=JSON)


def problem(response, status: int, field: str, fragment: str) -> None:
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    errors = response.json.get("errors") or []
    text = " ".join([response.json["detail"], *(e["message"] for e in errors)]).lower()
    assert any(e["field"] == field for e in errors), errors
    assert fragment.lower() in text, text


# ---- instants ----


@pytest.mark.parametrize(
    "url",
    [
        "/v1/segments/openers/members?at=0001-01-01T00:00:00%2B01:00",
        "/v1/segments/openers/members?at=9999-12-31T23:59:59-01:00",
        "/v1/contacts/c1/segments?at=0001-01-01T00:00:00%2B01:00",
        "/v1/segments/openers/explain/c1?at=9999-12-31T23:59:59-01:00",
    ],
)
def test_an_instant_outside_the_years_0001_to_9999_is_400(api, url):
    api("marketer").post("/v1/segments", json={"name": "Openers", "rule": "opened email"})
    problem(api("auditor").get(url), 400, "at", "outside the years 0001-9999")


def test_an_event_dated_outside_the_years_0001_to_9999_is_refused(api):
    response = api("producer").post(
        "/v1/events",
        json={"contact_id": "old", "type": "x", "occurred_at": "0001-01-01T00:30:00+01:00"},
    )
    problem(response, 422, "occurred_at", "outside the years 0001-9999")
    assert log_size(api) == 0


def test_an_offset_with_seconds_is_no_iso_8601_instant(api):
    """Python reads +01:00:30; ISO-8601 and RFC 3339 offsets have hours and minutes only."""
    api("marketer").post("/v1/segments", json={"name": "Openers", "rule": "opened email"})
    url = "/v1/segments/openers/members?at=2026-11-20T09:15:00%2B01:00:30"
    problem(api("auditor").get(url), 400, "at", "not an ISO-8601 instant")
    before = log_size(api)
    response = api("producer").post(
        "/v1/events",
        json={"contact_id": "c", "type": "x", "occurred_at": "2026-11-20T09:15:00-01:00:30"},
    )
    problem(response, 422, "occurred_at", "not an ISO-8601 instant")
    assert log_size(api) == before
    assert api("auditor").get(url.replace(":30", "")).status_code == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-24T10Z", "not an ISO-8601 instant"),
        ("20261124T100000Z", "not an ISO-8601 instant"),
        ("2026-11-24T10:00Z", "not an ISO-8601 instant"),
        ("2026-11-24 10:00:00Z", "not an ISO-8601 instant"),
        ("2026-02-29T00:00:00Z", "does not exist"),
        ("2026-11-24T24:00:00Z", "does not exist"),
        ("2016-12-31T23:59:60Z", "no leap seconds"),
        ("2026-11-24T10:00:00+99:99", "offset that does not exist"),
        ("0000-12-31T23:59:59Z", "outside the years 0001-9999"),
    ],
)
def test_an_instant_is_read_alike_in_a_query_and_in_a_body(api, text, message):
    """One reading of instants (RFC 3339's), wherever they come in."""
    api("marketer").post("/v1/segments", json={"name": "Openers", "rule": "opened email"})
    url = f"/v1/segments/openers/members?at={text.replace(' ', '%20').replace('+', '%2B')}"
    problem(api("auditor").get(url), 400, "at", message)
    before = log_size(api)
    response = api("producer").post(
        "/v1/events", json={"contact_id": "c", "type": "x", "occurred_at": text}
    )
    problem(response, 422, "occurred_at", message)
    preview = api("marketer").post(
        "/v1/segments/preview", json={"rule": "opened email", "at": text}
    )
    problem(preview, 422, "at", message)
    assert log_size(api) == before


def test_a_rule_date_outside_the_years_0001_to_9999_is_refused(api):
    rule = "signed_up_at after 9999-12-31T23:59-01:00"
    response = api("marketer").post("/v1/rules/validate", json={"rule": rule})
    problem(response, 422, "rule", "outside the years 0001-9999")


def test_instants_computed_beyond_the_years_0001_to_9999_are_written_with_six_digits(api):
    """A deadline from a date property in year 9999, a window starting before year 1."""
    api("marketer").post(
        "/v1/segments", json={"name": "Old", "rule": "signed_up_at more than 30 days ago"}
    )
    api("marketer").post(
        "/v1/segments", json={"name": "Openers", "rule": "opened email within 7 days"}
    )
    event = {
        "contact_id": "p",
        "type": "contact_updated",
        "properties": {"signed_up_at": "9999-12-31"},
    }
    assert api("producer").post("/v1/events", json=event).status_code == 201
    health = api("auditor").get("/healthz").json
    assert health["next_deadline"] == "+010000-01-30T00:00:00.000Z"
    explained = api("auditor").get("/v1/segments/old/explain/p").json
    assert explained["explanation"]["next_change"] == "+010000-01-30T00:00:00.000Z"
    early = api("auditor").get("/v1/segments/openers/explain/p?at=0001-01-01T00:00:00Z").json
    window = early["explanation"]["children"][0]["details"]["window"]
    assert window == {"after": "0000-12-25T00:00:00.000Z", "until": "0001-01-01T00:00:00.000Z"}


def test_a_year_before_1000_is_written_with_four_digits(api):
    event = {"contact_id": "c", "type": "x", "occurred_at": "0999-01-08T00:00:00Z"}
    assert api("producer").post("/v1/events", json=event).status_code == 201
    stored = api("auditor").get("/v1/events").json["events"][0]
    assert stored["occurred_at"] == "0999-01-08T00:00:00.000Z"


def test_the_scheduler_leaves_a_deadline_past_year_9999_unarmed():
    scheduler = DeadlineScheduler(lambda: None)
    scheduler.start()
    try:
        scheduler.wake_at(LAST_INSTANT + 1)  # no datetime holds it: nothing to arm
        scheduler.wake_at(LAST_INSTANT)
    finally:
        scheduler.shutdown()


# ---- numbers and cursors ----


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/events?limit=%C2%B2", "limit"),  # a superscript two: a digit, not a number
        ("/v1/events?after=%C2%B2", "after"),
        ("/v1/events?after=99999999999999999999", "after"),
        ("/v1/events?limit=" + "9" * 5000, "limit"),
        ("/v1/events?cursor=" + cursor("99999999999999999999", "/v1/events"), "cursor"),
        ("/v1/events?cursor=" + cursor("-1", "/v1/events"), "cursor"),
        ("/v1/events?cursor=" + cursor(b"[" * 2000), "cursor"),
        ("/v1/events?cursor=" + cursor("1"), "cursor"),  # no list named
        ("/v1/events?cursor=" + cursor('"1"', "/v1/events"), "cursor"),  # text, not a position
        (
            "/v1/segments/s/members?cursor=" + cursor('"\\ud800"', "/v1/segments/s/members"),
            "cursor",
        ),
        (
            "/v1/segments/s/transitions?cursor="
            + cursor("99999999999999999999", "/v1/segments/s/transitions"),
            "cursor",
        ),
    ],
)
def test_odd_numbers_and_cursors_are_400(api, url, field):
    api("marketer").post("/v1/segments", json={"name": "S", "rule": "opened email"})
    response = api("auditor").get(url)
    assert response.status_code == 400, response.json
    assert [e["field"] for e in response.json["errors"]] == [field]


@pytest.mark.parametrize("etag", ['"\u00b2"', '"' + "9" * 5000 + '"', '"99999999999999999999"'])
def test_an_etag_that_is_no_version_matches_none(api, etag):
    # An ETag is opaque (RFC 9110): one the service never gave is well formed, and not its own.
    api("marketer").post("/v1/segments", json={"name": "S", "rule": "opened email"})
    response = api("marketer").put(
        "/v1/segments/s", json={"rule": "clicked email"}, headers={"If-Match": etag}
    )
    assert (response.status_code, response.json["current_version"]) == (412, 1)
    assert api("auditor").get("/v1/segments/s").json["version"] == 1


# ---- bodies ----


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/events", '{"contact_id": "\\ud800", "type": "x"}', "contact_id"),
        (
            "/v1/events",
            '{"events": [{"contact_id": "a", "type": "x"}, {"contact_id": "b", "type": "x",'
            ' "properties": {"k": ["\\udc00"]}}]}',
            "events.1.properties.k.0",
        ),
        ("/v1/events", '{"contact_id": "c", "type": "x", "properties": {"\\ud800": 1}}', None),
        ("/v1/segments", '{"name": "a\\ud800", "kind": "static"}', "name"),
        ("/v1/keys", '{"role": "auditor", "name": "\\ud800"}', "name"),
    ],
)
def test_text_with_a_lone_surrogate_is_refused_where_it_is(api, url, body, field):
    response = post_raw(api, url, body)
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    if field is None:  # a name of its own: written with the escape
        assert error["field"] == "properties.\\ud800"
    else:
        assert error["field"] == field
    assert "unicode" in error["message"].lower()
    assert log_size(api) == 0
    assert api("auditor").get("/v1/segments").json["segments"] == []


def test_a_surrogate_pair_is_text(api):
    response = post_raw(api, "/v1/events", '{"contact_id": "\\ud83d\\ude00", "type": "x"}')
    assert response.status_code == 201
    assert api("auditor").get("/v1/events").json["events"][0]["stream"] == "contact:\U0001f600"


@pytest.mark.parametrize(
    ("url", "body", "fragment"),
    [
        ("/v1/rules/validate", "[" * 990 + "]" * 990, "nested too deeply"),
        ("/v1/events", "[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_bodies_python_cannot_read_are_400(api, url, body, fragment):
    response = post_raw(api, url, body)
    assert response.status_code == 400
    assert fragment in response.json["detail"]
    assert log_size(api) == 0


@pytest.mark.parametrize(
    ("event", "field", "fragment"),
    [
        ({"contact_id": "a/b", "type": "x"}, "contact_id", "no '/'"),
        ({"contact_id": "..", "type": "x"}, "contact_id", "not '.' or '..'"),
        ({"contact_id": ".", "type": "x"}, "contact_id", "not '.' or '..'"),
        ({"contact_id": "c", "type": "email_opened\n"}, "type", "event type"),
        ({"contact_id": "c", "type": "x", "properties": {"a\x00b": 1}}, "properties", "control"),
        (
            {
                "contact_id": "c",
                "type": "x",
                "properties": {"deep": json.loads("[" * 40 + "]" * 40)},
            },
            "properties",
            "nested more than 32",
        ),
    ],
)
def test_events_with_odd_characters_or_nesting_are_refused(api, event, field, fragment):
    problem(api("producer").post("/v1/events", json=event), 422, field, fragment)
    assert log_size(api) == 0


def test_a_static_list_takes_no_contact_id_with_a_slash(api):
    api("marketer").post("/v1/segments", json={"name": "VIP", "kind": "static"})
    response = api("marketer").post("/v1/segments/vip/members", json={"add": ["a/b"]})
    assert response.status_code == 422
    assert api("auditor").get("/v1/segments/vip").json["member_count"] == 0


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/segments", {"name": "a\x00b", "kind": "static"}, "name"),
        ("/v1/segments/preview", {"rule": "opened email", "sample": 1.5}, "sample"),
        ("/v1/segments/preview", {"rule": "opened email", "sample": "5"}, "sample"),
    ],
)
def test_segment_bodies_with_odd_values_are_refused(api, url, body, field):
    response = api("marketer").post(url, json=body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]
    assert api("auditor").get("/v1/segments").json["segments"] == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"contact_id": "\xed\xa0\x80", "type": "x"}',  # a surrogate encoded as if UTF-8
        '{"contact_id": "c", "type": "x"}'.encode("utf-16"),
    ],
)
def test_a_body_in_anything_but_utf8_is_400(api, body):
    response = api("producer").post("/v1/events", data=body, content_type=JSON)
    assert response.status_code == 400
    assert response.json["detail"] == "the body is not UTF-8"
    assert log_size(api) == 0


def test_a_body_with_a_byte_order_mark_is_400_that_says_so(api):
    body = b"\xef\xbb\xbf" + b'{"contact_id": "c", "type": "x"}'
    response = api("producer").post("/v1/events", data=body, content_type=JSON)
    assert response.status_code == 400
    assert "byte order mark" in response.json["detail"]
    assert log_size(api) == 0


@pytest.mark.parametrize(
    "url", ["/v1/contacts/%FF", "/v1/contacts/%C0/segments", "/v1/segments/s/explain/%FE%FF"]
)
def test_a_path_that_is_not_utf8_is_400_not_a_replacement_character(api, url):
    api("producer").post("/v1/events", json={"contact_id": "\ufffd", "type": "x"})
    api("marketer").post("/v1/segments", json={"name": "S", "rule": 'performed "x"'})
    response = api("auditor").get(url)
    assert response.status_code == 400
    assert response.json["errors"] == [
        {"field": "(path)", "message": "the path is not UTF-8 once percent-decoded"}
    ]
    assert api("auditor").get("/v1/contacts/%EF%BF%BD").status_code == 200  # "\ufffd" itself


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contacts/{}",
        "/v1/contacts/{}/events",
        "/v1/contacts/{}/segments",
        "/v1/segments/s/explain/{}",
    ],
)
@pytest.mark.parametrize("contact", ["%00", "a%0Ab", "%20a", "x" * 201, "%C2%A0"])
def test_a_contact_id_no_contact_can_have_is_400(api, path, contact):
    api("marketer").post("/v1/segments", json={"name": "S", "rule": "opened email"})
    response = api("auditor").get(path.format(contact))
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "contact_id"
    assert response.json["detail"].startswith("no contact has this id: ")


def test_no_route_and_a_method_not_allowed_say_what_instead(api):
    slash = api("auditor").get("/v1/segments/")
    assert (slash.status_code, slash.json["title"]) == (404, "Not found")
    assert slash.json["detail"].endswith("without the trailing slash, /v1/segments")
    nowhere = api("auditor").get("/v1/nowhere")
    assert nowhere.json["detail"] == "there is no endpoint /v1/nowhere (see /openapi.json)"
    patch = api("marketer").patch("/v1/segments/x", json={})
    assert (patch.status_code, patch.json["title"]) == (405, "Method not allowed")
    assert patch.json["detail"].startswith("PATCH is not allowed on /v1/segments/x; it takes ")
    assert "DELETE" in patch.json["detail"]
    assert patch.mimetype == "application/problem+json"


# ---- names and parameters given twice, unknown or empty ----


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/events", '{"contact_id": "c", "type": "a", "type": "b"}', "(body)"),
        (
            "/v1/events",
            '{"events": [{"contact_id": "c", "type": "a"},'
            ' {"contact_id": "c", "type": "a", "properties": {"x": 1, "y": 2, "x": 3}}]}',
            "events.1.properties",
        ),
        ("/v1/segments", '{"name": "A", "rule": "opened email", "name": "B"}', "(body)"),
    ],
)
def test_a_name_repeated_in_a_json_object_is_400_where_it_is(api, url, body, field):
    """Which of the two values a repeated name means is up to each JSON reader."""
    problem(post_raw(api, url, body), 400, field, "appears more than once")
    assert log_size(api) == 0


@pytest.mark.parametrize(
    ("url", "field", "fragment"),
    [
        ("/v1/events?limt=10", "limt", "takes after, cursor, limit"),
        ("/v1/segments/s?at=2026-11-20T00:00:00Z", "at", "takes no parameters"),
        ("/v1/events?limit=10&limit=20", "limit", "given 2 times"),
        (
            "/v1/segments/s/members?at=2026-11-20T00:00:00Z&at=2026-11-21T00:00:00Z",
            "at",
            "given 2 times",
        ),
        ("/v1/segments?archived=ture", "archived", "true or false"),
        ("/v1/segments/s/transitions?contact=", "contact", "empty"),
        ("/v1/events?after=", "after", "empty"),
        ("/healthz?x=1", "x", "takes no parameters"),
        ("/openapi.json?x=1", "x", "takes no parameters"),
        ("/docs?x=1", "x", "takes no parameters"),
    ],
)
def test_a_query_parameter_unknown_repeated_or_odd_is_400(api, url, field, fragment):
    api("marketer").post("/v1/segments", json={"name": "S", "rule": "opened email"})
    problem(api("auditor").get(url), 400, field, fragment)


def test_a_query_parameter_on_a_write_is_refused_before_anything_is_stored(api):
    response = api("producer").post("/v1/events?dry_run=1", json={"contact_id": "c", "type": "x"})
    problem(response, 400, "dry_run", "unknown query parameter")
    assert log_size(api) == 0


def test_a_path_with_an_empty_segment_is_404_not_a_redirect_to_another_contact(api):
    api("producer").post("/v1/events", json={"contact_id": "ab", "type": "x"})
    response = api("auditor").get("/v1/contacts/ab%2F/segments")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


# ---- text fields ----


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/segments", {"name": "A", "kind": "static", "description": "a\x00b"}, "description"),
        ("/v1/segments", {"name": "A", "kind": "static", "description": "a\x1bb"}, "description"),
        ("/v1/keys", {"role": "auditor", "name": "a\nb"}, "name"),
    ],
)
def test_control_characters_in_names_and_descriptions_are_refused(api, url, body, field):
    problem(api("admin").post(url, json=body), 422, field, "control characters")
    assert api("auditor").get("/v1/segments").json["segments"] == []


def test_a_description_may_have_several_lines(api):
    body = {"name": "A", "kind": "static", "description": "first line\n\tsecond\r\nthird"}
    assert api("marketer").post("/v1/segments", json=body).status_code == 201


def test_a_rule_that_refers_to_an_archived_segment_says_so(api):
    api("marketer").post("/v1/segments", json={"name": "Old", "rule": "purchased"})
    api("marketer").delete("/v1/segments/old")
    response = api("marketer").post("/v1/rules/validate", json={"rule": 'in segment "Old"'})
    problem(response, 422, "rule", 'the segment "old" is archived')
