"""Event ingest: single and batch, idempotent, all or nothing; every bad input a clear 4xx."""

from __future__ import annotations

import gzip
import json
import sqlite3
from contextlib import closing

import pytest

from api.schemas import format_instant

PROBLEM = "application/problem+json"


def log_size(api) -> int:
    return len(api("auditor").get("/v1/events?limit=1000").json["events"])


def test_a_single_event_is_stored_and_repeats_are_acknowledged(api):
    event = {
        "event_id": "e-1",
        "contact_id": "c-1042",
        "type": "email_opened",
        "occurred_at": "2026-11-18T08:00:00.250Z",
        "properties": {"campaign": "welcome"},
    }
    first = api("producer").post("/v1/events", json=event)
    assert first.status_code == 201
    assert first.json["position"] == 1
    assert first.json["duplicate"] is False
    again = api("producer").post("/v1/events", json=event)
    assert again.status_code == 200
    assert again.json == {**first.json, "duplicate": True}
    stored = api("auditor").get("/v1/events").json["events"]
    assert len(stored) == 1
    assert stored[0]["stream"] == "contact:c-1042"
    assert stored[0]["occurred_at"] == "2026-11-18T08:00:00.250Z"
    assert stored[0]["data"] == {"campaign": "welcome"}


def test_a_batch_is_stored_whole_with_positions_in_order(api):
    events = [{"contact_id": f"c-{i}", "type": "page_viewed"} for i in range(5)]
    response = api("producer").post("/v1/events", json={"events": events})
    assert response.status_code == 201
    assert [r["position"] for r in response.json["events"]] == [1, 2, 3, 4, 5]


def test_a_batch_with_one_bad_event_stores_nothing_and_says_which(api):
    events = [
        {"contact_id": "c-1", "type": "page_viewed"},
        {"contact_id": "c-2", "type": "page_viewed", "occurred_at": "yesterday"},
        {"contact_id": "c-3"},
    ]
    response = api("producer").post("/v1/events", json={"events": events})
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"events.1.occurred_at", "events.2.type"}
    assert log_size(api) == 0


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"type": "x"}, "contact_id", "Missing data"),
        ({"contact_id": "c", "type": "x", "colour": "red"}, "colour", "Unknown field"),
        ({"contact_id": 5, "type": "x"}, "contact_id", "Not a valid string"),
        ({"contact_id": "c", "type": "has space"}, "type", "event type"),
        ({"contact_id": "c", "type": "x", "properties": [1]}, "properties", "Not a valid mapping"),
        ({"contact_id": "c", "type": "x", "properties": {"": 1}}, "properties", "1-200 char"),
        (
            {"contact_id": "c", "type": "x", "properties": {"p" * 201: 1}},
            "properties",
            "1-200 char",
        ),
        (
            {"contact_id": "c", "type": "x", "occurred_at": "2026-11-18T08:00:00"},
            "occurred_at",
            "time zone",
        ),
        ({"contact_id": " c", "type": "x"}, "contact_id", "surrounding spaces"),
        ({"contact_id": "", "type": "x"}, "contact_id", "Length"),
    ],
)
def test_bad_events_are_refused_with_the_field(api, body, field, fragment):
    response = api("producer").post("/v1/events", json=body)
    assert response.status_code == 422
    errors = response.json["errors"]
    assert any(e["field"] == field and fragment.lower() in e["message"].lower() for e in errors), (
        errors
    )
    assert log_size(api) == 0


def test_an_event_too_far_in_the_future_is_refused(api, clock):
    later = format_instant(clock() + 2 * 86_400_000)
    response = api("producer").post(
        "/v1/events", json={"contact_id": "c", "type": "x", "occurred_at": later}
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "occurred_at"  # a single event: its field
    assert "too far in the future" in response.json["detail"]
    assert log_size(api) == 0


def test_a_batch_names_every_event_too_far_in_the_future(api, clock):
    later = format_instant(clock() + 2 * 86_400_000)
    events = [
        {"contact_id": "c", "type": "x", "occurred_at": later},
        {"contact_id": "c", "type": "x"},
        {"contact_id": "d", "type": "x", "occurred_at": later},
    ]

    def refused(events: list) -> list[str]:
        response = api("producer").post("/v1/events", json={"events": events})
        assert response.status_code == 422
        return [e["field"] for e in response.json["errors"]]

    assert refused(events) == ["events.0.occurred_at", "events.2.occurred_at"]
    # Beside the problems the schema finds, not only once those are mended.
    events[0]["type"] = ""
    events.append({"contact_id": "d", "type": "x", "occurred_at": "soon"})
    assert refused(events) == [
        "events.0.occurred_at",
        "events.0.type",
        "events.2.occurred_at",
        "events.3.occurred_at",
    ]
    single = api("producer").post("/v1/events", json=events[0])
    assert [e["field"] for e in single.json["errors"]] == ["occurred_at", "type"]
    assert log_size(api) == 0


def test_an_event_id_reused_for_another_event_is_a_409_that_stores_nothing(api):
    first = {"event_id": "e-1", "contact_id": "c-1", "type": "email_opened"}
    assert api("producer").post("/v1/events", json=first).status_code == 201
    retry = {**first, "occurred_at": "2026-11-18T00:00:00Z"}  # stamped anew: the same event
    assert api("producer").post("/v1/events", json=retry).status_code == 200
    other = {"event_id": "e-1", "contact_id": "c-2", "type": "email_opened"}
    single = api("producer").post("/v1/events", json=other)
    assert single.status_code == 409
    assert single.json["errors"][0]["field"] == "event_id"
    batch = api("producer").post(
        "/v1/events", json={"events": [{**other, "event_id": "e-2"}, other]}
    )
    assert batch.status_code == 409
    assert batch.json["errors"][0]["field"] == "events.1.event_id"
    assert "names another event" in batch.json["detail"]
    both = api("producer").post("/v1/events", json={"events": [other, {**first}, other]})
    assert [e["field"] for e in both.json["errors"]] == ["events.0.event_id", "events.2.event_id"]
    assert log_size(api) == 1


def test_malformed_json_says_where(api):
    response = api("producer").post(
        "/v1/events", data='{"contact_id": "c",\n "type": }', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["title"] == "Malformed JSON"
    assert response.json["errors"][0]["line"] == 2
    assert "line 2" in response.json["detail"]


@pytest.mark.parametrize(
    ("number", "status"),
    [("9223372036854775807", 201), ("-9223372036854775808", 201), ("1.8446744073709552e19", 201)],
)
def test_integers_of_64_bits_and_doubles_are_taken(api, number, status):
    body = '{"contact_id": "c", "type": "purchased", "properties": {"amount": NUMBER}}'
    response = api("producer").post(
        "/v1/events", data=body.replace("NUMBER", number), content_type="application/json"
    )
    assert response.status_code == status


@pytest.mark.parametrize(
    "number",
    [
        "1e400",
        "-2.5E+999",
        "1e-400",
        "-0.1E-330",
        "9223372036854775808",
        "-18446744073709551617",
        "7" * 5000,
    ],
    ids=["1e400", "-2.5E+999", "1e-400", "-0.1E-330", "2**63", "-2**64-1", "5000-digits"],
)
def test_a_number_the_service_cannot_hold_is_422_at_its_place(api, number):
    body = '{"events": [{"contact_id": "c", "type": "x"}, {"contact_id": "c", "type": "purchased",'
    body += ' "properties": {"amount": [1, NUMBER]}}]}'
    response = api("producer").post(
        "/v1/events", data=body.replace("NUMBER", number), content_type="application/json"
    )
    problem = response.json
    assert response.status_code == 422
    assert problem["errors"][0]["field"] == "events.1.properties.amount.1"
    assert number[:40] in problem["detail"]
    assert log_size(api) == 0


@pytest.mark.parametrize("number", ["0.0", "-0e-400", "0E5", "5e-324", "1e308", "0.000"])
def test_a_number_a_double_holds_is_stored(api, number):
    body = '{"contact_id": "c", "type": "purchased", "properties": {"amount": NUMBER}}'
    response = api("producer").post(
        "/v1/events", data=body.replace("NUMBER", number), content_type="application/json"
    )
    assert response.status_code == 201, response.json
    stored = api("auditor").get("/v1/events").json["events"][-1]["data"]["amount"]
    assert stored == float(number)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_malformed_json(api, number):
    body = '{"contact_id": "c", "type": "purchased", "properties": {"amount": NUMBER}}'
    body = body.replace("NUMBER", number)
    response = api("producer").post("/v1/events", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["title"] == "Malformed JSON"
    assert number.lstrip("-") in response.json["detail"]
    assert log_size(api) == 0


def test_a_body_that_is_not_json_is_415(api):
    response = api("producer").post("/v1/events", data="contact_id=c", content_type="text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize("compressed", [True, False])
def test_a_compressed_body_is_415_and_stores_nothing(api, compressed):
    body = json.dumps({"contact_id": "c", "type": "x"}).encode()
    response = api("producer").post(
        "/v1/events",
        data=gzip.compress(body) if compressed else body,  # claimed, or not even compressed
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 415
    assert "Content-Encoding 'gzip'" in response.json["detail"]
    assert api("auditor").get("/v1/events").json["events"] == []


@pytest.mark.parametrize("charset", ["latin-1", "utf-16"])
def test_a_body_in_another_charset_than_utf8_is_415_and_stores_nothing(api, charset):
    body = json.dumps({"contact_id": "Müller", "type": "x"}, ensure_ascii=False)
    response = api("producer").post(
        "/v1/events", data=body.encode(charset), content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 415
    assert f"charset '{charset}'" in response.json["detail"]
    assert log_size(api) == 0


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_utf8_charset_parameter_is_taken(api, charset):
    body = json.dumps({"contact_id": "Müller", "type": "x"}, ensure_ascii=False)
    response = api("producer").post(
        "/v1/events", data=body.encode(), content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 201
    assert log_size(api) == 1


def test_too_many_events_in_a_batch_is_413(api):
    events = [{"contact_id": "c", "type": "x"}] * 51
    response = api("producer").post("/v1/events", json={"events": events})
    assert response.status_code == 413
    assert "at most 50 events" in response.json["detail"]
    assert log_size(api) == 0


def test_an_oversized_body_is_413(api):
    big = {"contact_id": "c", "type": "x", "properties": {"blob": "x" * 70_000}}
    response = api("producer").post(
        "/v1/events", data=json.dumps(big), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.mimetype == PROBLEM
    assert log_size(api) == 0


def test_the_log_pages_with_an_opaque_cursor(api):
    api("producer").post("/v1/events", json={"events": [{"contact_id": "c", "type": "x"}] * 5})
    first = api("auditor").get("/v1/events?limit=2").json
    assert [e["position"] for e in first["events"]] == [1, 2]
    second = api("auditor").get(f"/v1/events?limit=2&cursor={first['next_cursor']}").json
    assert [e["position"] for e in second["events"]] == [3, 4]
    last = api("auditor").get(f"/v1/events?limit=2&cursor={second['next_cursor']}").json
    assert [e["position"] for e in last["events"]] == [5]
    assert last["next_cursor"] is None
    assert api("auditor").get("/v1/events?after=4").json["events"][0]["position"] == 5


@pytest.mark.parametrize("query", ["cursor=nonsense!", "limit=0", "limit=5000", "after=-1"])
def test_bad_query_parameters_are_400(api, query):
    response = api("auditor").get(f"/v1/events?{query}")
    assert response.status_code == 400
    assert response.json["errors"]


def test_after_and_cursor_together_are_400(api):
    api("producer").post("/v1/events", json={"events": [{"contact_id": "c", "type": "x"}] * 2})
    cursor = api("auditor").get("/v1/events?limit=1").json["next_cursor"]
    assert api("auditor").get(f"/v1/events?cursor={cursor}").status_code == 200
    response = api("auditor").get(f"/v1/events?after=0&cursor={cursor}")
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "after"


def test_a_contact_shows_its_properties_and_events(api):
    api("producer").post(
        "/v1/events",
        json={
            "events": [
                {
                    "contact_id": "c-7",
                    "type": "contact_updated",
                    "properties": {"country": "DE", "city": "Bonn"},
                },
                {"contact_id": "c-7", "type": "contact_updated", "properties": {"city": None}},
                {"contact_id": "c-7", "type": "page_viewed", "properties": {"url": "/pricing"}},
            ]
        },
    )
    contact = api("auditor").get("/v1/contacts/c-7").json
    assert contact["properties"] == {"country": "DE"}
    assert contact["event_count"] == 3
    events = api("auditor").get("/v1/contacts/c-7/events?limit=2").json
    assert [e["type"] for e in events["events"]] == ["contact_updated", "contact_updated"]
    rest = api("auditor").get(f"/v1/contacts/c-7/events?cursor={events['next_cursor']}").json
    assert [e["type"] for e in rest["events"]] == ["page_viewed"]
    assert rest["next_cursor"] is None
    assert api("auditor").get("/v1/contacts/nobody").status_code == 404
    assert api("auditor").get("/v1/contacts/nobody/events").status_code == 404


def test_a_write_kept_waiting_by_another_writer_gets_a_503_and_changes_nothing(app, api):
    event = {"event_id": "e-1", "contact_id": "c-1", "type": "email_opened"}
    path = app.config["SEGMENTS_DB"]
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process (a replay, say) is writing
        response = api("producer").post("/v1/events", json=event)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.mimetype == "application/problem+json"
        assert "nothing was stored" in response.json["detail"]
        assert api("auditor").get("/v1/events").json["events"] == []  # reads go on
        other.execute("COMMIT")
    retried = api("producer").post("/v1/events", json=event)
    assert retried.status_code == 201
    assert [e["event_id"] for e in api("auditor").get("/v1/events").json["events"]] == ["e-1"]


@pytest.fixture
def writer_after_append(app, monkeypatch):
    """Another writer (a replay, another process) takes the database the moment an append
    has committed, before the request can apply it; `release()` lets it go."""
    log = app.extensions["segments"].service.log
    other = sqlite3.connect(app.config["SEGMENTS_DB"], isolation_level=None)
    append = log.append

    def append_then_lose_the_database(*args, **kwargs):
        receipts = append(*args, **kwargs)
        other.execute("BEGIN IMMEDIATE")
        return receipts

    class Writer:
        @staticmethod
        def arm() -> None:
            monkeypatch.setattr(log, "append", append_then_lose_the_database)

        @staticmethod
        def release() -> None:
            monkeypatch.undo()
            other.execute("COMMIT")

    yield Writer
    other.close()


def test_events_stored_but_kept_from_membership_by_another_writer_get_a_202(
    api, writer_after_append
):
    api("marketer").post("/v1/segments", json={"name": "Openers", "rule": "opened email"})
    writer_after_append.arm()
    # No event_id: sent again after a 5xx, the event would be stored twice.
    response = api("producer").post(
        "/v1/events", json={"contact_id": "c-1", "type": "email_opened"}
    )
    assert response.status_code == 202
    assert response.json["position"] == 2 and response.json["duplicate"] is False
    writer_after_append.release()
    assert log_size(api) == 2
    members = api("auditor").get("/v1/segments/openers/members").json["members"]
    assert [m["contact_id"] for m in members] == ["c-1"]  # applied by the next catch-up
    (entered,) = api("auditor").get("/v1/segments/openers/transitions").json["transitions"]
    assert entered["cause"]["position"] == 2


def test_a_segment_stored_but_kept_from_membership_by_another_writer_is_a_503_that_says_so(
    app, api, writer_after_append
):
    writer_after_append.arm()
    response = api("marketer").post(
        "/v1/segments", json={"name": "Openers", "rule": "opened email"}
    )
    assert response.status_code == 503
    assert response.json["title"] == "Stored, not applied yet"
    assert "do not send it again" in response.json["detail"]
    writer_after_append.release()
    app.extensions["segments"].service.catch_up()  # as the scheduler, woken, does
    assert api("auditor").get("/v1/segments/openers").json["rule"] == "opened email"
    again = api("marketer").post("/v1/segments", json={"name": "Openers", "rule": "opened email"})
    assert again.status_code == 409


def test_events_stored_but_not_applied_for_an_internal_error_are_a_500_that_says_so(
    app, api, clock, monkeypatch, caplog
):
    log = app.extensions["segments"].service.log
    append = log.append

    def append_then_break_the_projection(*args, **kwargs):
        receipts = append(*args, **kwargs)
        with closing(sqlite3.connect(app.config["SEGMENTS_DB"])) as other:
            other.execute("DROP TABLE contacts")  # a projection damaged by hand, say
        return receipts

    assert api("auditor").get("/healthz").json["status"] == "ok"
    monkeypatch.setattr(log, "append", append_then_break_the_projection)
    response = api("producer").post("/v1/events", json={"contact_id": "c-1", "type": "x"})
    assert response.status_code == 500
    assert response.json["title"] == "Stored, not applied yet"
    assert "do not send them again" in response.json["detail"]
    assert [e["position"] for e in response.json["events"]] == [1]
    assert "stored events could not be applied" in caplog.text
    monkeypatch.undo()
    assert log_size(api) == 1
    health = api("auditor").get("/healthz").json  # what a monitor sees
    assert health["status"] == "failing"
    assert "no such table: contacts" in health["error"]
    assert health["failing_since"] == format_instant(clock())
    assert health["projected_position"] < health["log_position"]
