"""The benchmark's event generator: deterministic, realistic enough, and streaming."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from bench.generate import MIXED_SEGMENTS, STAGES, generate_events, main, to_new_event
from eventstore.interface import NewEvent
from grammar import parse

ROOT = Path(__file__).resolve().parents[1]
START = 1_767_225_600_000
DAY = 86_400_000
ACTIVITY = {
    "page_viewed",
    "email_opened",
    "email_clicked",
    "contact_updated",
    "form_submitted",
    "purchased",
    "trial_started",
    "webinar_attended",
    "app_login",
    "unsubscribed",
}


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return list(generate_events(11, 1_000, 20_000))


def test_the_same_seed_gives_the_same_events():
    first = list(generate_events(5, 300, 4_000, late_fraction=0.02))
    again = list(generate_events(5, 300, 4_000, late_fraction=0.02))
    other = list(generate_events(6, 300, 4_000, late_fraction=0.02))
    assert first == again
    assert [e["event_id"] for e in first] != [e["event_id"] for e in other]


def test_a_known_seed_gives_known_events():
    # Pinned, so that a change of machine or Python (or of this module) that moves the
    # benchmark's data shows up here.
    first = next(generate_events(1, 10, 30))
    assert first["event_id"] == "008a05ac-4647-4159-8324-c9859b810e76"
    assert first["occurred_at"] == 1_767_296_800_962
    assert first["properties"]["email"] == "olivia.fischer808@gmail.com"


def test_counts(stream):
    assert len(stream) == 20_000
    assert len({e["event_id"] for e in stream}) == 20_000
    assert len({e["contact_id"] for e in stream}) == 1_000
    assert list(generate_events(1, 10, 0)) == []
    # Too few events for every contact to appear: each that appears still gets its start.
    few = list(generate_events(1, 1_000, 300))
    assert len(few) == 300
    assert len({e["contact_id"] for e in few}) == 100


@pytest.mark.parametrize(
    ("contacts", "events", "late"), [(0, 10, 0.0), (10, -1, 0.0), (10, 10, 1.5)]
)
def test_bad_arguments_are_refused(contacts, events, late):
    with pytest.raises(ValueError, match="need"):
        next(generate_events(1, contacts, events, late_fraction=late))


def test_events_come_in_time_order_within_the_period(stream):
    times = [e["occurred_at"] for e in stream]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] <= START + 180 * DAY
    # Spread over the whole period, not bunched at one end.
    assert times[len(times) // 2] - START > 60 * DAY
    assert START + 180 * DAY - times[-1] < DAY


def test_late_events_are_earlier_than_their_place_by_minutes_to_hours():
    events = list(generate_events(3, 500, 20_000, late_fraction=0.05))
    latest, late = 0, []
    for e in events:
        if e["occurred_at"] < latest:
            late.append((e, latest - e["occurred_at"]))
        latest = max(latest, e["occurred_at"])
    activity = sum(e["type"] in ACTIVITY for e in events)
    assert 0.03 * activity < len(late) < 0.06 * activity
    delays = [delay for _, delay in late]
    assert max(delays) <= 12 * 3_600_000 + DAY // 10
    assert statistics.median(delays) > 10 * 60_000
    first_seen: dict[str, int] = {}
    for e in events:
        first_seen.setdefault(e["contact_id"], e["occurred_at"])
        # A late event never predates the contact's first event.
        assert e["occurred_at"] >= first_seen[e["contact_id"]]


def test_the_shape_of_events(stream):
    uuid_shape = re.compile(
        r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    )
    urls = re.compile(r"^/(pricing|features|contact|blog/[a-z0-9-]+|docs/[a-z-]+)?$")
    for e in stream:
        assert list(e) == ["event_id", "contact_id", "type", "occurred_at", "properties"]
        assert uuid_shape.match(e["event_id"])
        assert re.fullmatch(r"c-\d+", e["contact_id"])
        assert type(e["occurred_at"]) is int
        assert isinstance(e["properties"], dict)
        p = e["properties"]
        match e["type"]:
            case "page_viewed":
                assert urls.match(p["url"])
            case "email_opened":
                assert re.fullmatch(r"welcome|newsletter-\d+|promo-\d+", p["campaign"])
            case "email_clicked":
                assert set(p) == {"campaign", "url"} and urls.match(p["url"])
            case "form_submitted":
                assert p["form"] in {
                    "demo-request",
                    "newsletter",
                    "contact-sales",
                    "webinar-signup",
                }
            case "purchased":
                assert p["amount"] > 0 and round(p["amount"], 2) == p["amount"]
                assert p["currency"] in {"EUR", "USD"} and p["product"]
            case "unsubscribed":
                assert p == {}
            case "contact_updated":
                assert p and set(p) <= {
                    "country", "city", "lead_score", "lifecycle_stage", "age", "email",
                    "device_type", "signed_up_at",
                }  # fmt: skip
            case kind:
                assert kind in {"signed_up", "trial_started", "webinar_attended", "app_login"}


def test_each_contact_starts_with_its_properties_then_signs_up(stream):
    by_contact: dict[str, list[dict]] = defaultdict(list)
    for e in stream:
        by_contact[e["contact_id"]].append(e)
    emails = Counter()
    for events in by_contact.values():
        intro = events[0]
        assert intro["type"] == "contact_updated"
        p = intro["properties"]
        assert re.fullmatch(r"[A-Z]{2}", p["country"])
        assert type(p["lead_score"]) is int and 0 <= p["lead_score"] <= 100
        assert p["lifecycle_stage"] in STAGES
        assert 18 <= p["age"] <= 70
        assert p["device_type"] in {"mobile", "desktop", "tablet"}
        assert re.fullmatch(r"[a-zà-ÿ]+\.[a-z]+\d+@[a-z.]+", p["email"])
        emails[p["email"].endswith("@acme.com")] += 1
        signed_up = datetime.fromisoformat(p["signed_up_at"])
        assert p["signed_up_at"].endswith("Z")
        assert round(signed_up.timestamp() * 1000) == intro["occurred_at"]
        kinds = [e["type"] for e in events[:6]]
        assert "signed_up" in kinds and kinds.count("signed_up") == 1
    # Some of everything the segments ask about.
    assert 0.01 < emails[True] / len(by_contact) < 0.15
    cities = sum("city" in events[0]["properties"] for events in by_contact.values())
    assert 0.85 < cities / len(by_contact) < 0.99
    updates = [e["properties"] for e in stream if e["type"] == "contact_updated"]
    assert any(None in p.values() for p in updates), "no update ever unsets a property"


def test_the_mix_of_types(stream):
    share = {k: n / len(stream) for k, n in Counter(e["type"] for e in stream).items()}
    assert max(share, key=share.get) == "page_viewed"
    assert 0.30 < share["page_viewed"] < 0.45
    assert 0.12 < share["email_opened"] < 0.30
    assert 0.04 < share["email_clicked"] < 0.12
    assert 0.08 < share["contact_updated"] < 0.25
    for kind in ("form_submitted", "purchased"):
        assert 0.02 < share[kind] < 0.06, kind
    assert 0.03 < share["trial_started"] + share["webinar_attended"] + share["app_login"] < 0.07
    assert 0.002 < share["unsubscribed"] < 0.02
    amounts = [e["properties"]["amount"] for e in stream if e["type"] == "purchased"]
    assert 45 < statistics.median(amounts) < 80


def test_activity_is_heavy_tailed(stream):
    counts = sorted(Counter(e["contact_id"] for e in stream).values(), reverse=True)
    top = statistics.mean(counts[: len(counts) // 100])
    assert top > 10 * statistics.median(counts)
    # Many contacts do little beyond signing up.
    assert sum(n <= 4 for n in counts) > 0.2 * len(counts)


def test_memory_does_not_grow_with_the_number_of_events():
    def peak(events: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate_events(2, 500, events):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(5_000), peak(50_000)
    assert large < 1_000_000
    assert large < 1.5 * small


def test_to_new_event(stream):
    event = next(e for e in stream if e["type"] == "purchased")
    assert to_new_event(event) == NewEvent(
        event_id=event["event_id"],
        stream="contact:" + event["contact_id"],
        type="purchased",
        data=event["properties"],
        occurred_at=event["occurred_at"],
    )


def test_the_command_line_writes_json_lines(capsys):
    main(["--seed", "4", "--contacts", "20", "--events", "100", "--late", "0.1"])
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == list(
        generate_events(4, 20, 100, late_fraction=0.1)
    )


def test_the_script_runs_from_anywhere(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--contacts", "5", "--events", "12"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert len(out.splitlines()) == 12


# ---- the segments that go with the events ----

REFERENCE = re.compile(r'in segment "([^"]+)"')


def test_twenty_named_segments():
    names = [name for name, _ in MIXED_SEGMENTS]
    assert len(names) == 20 == len(set(names))


def test_segment_rules_parse():
    for name, rule in MIXED_SEGMENTS:
        assert parse(rule) is not None, name


def test_segment_references_resolve_without_cycles():
    rules = dict(MIXED_SEGMENTS)
    refs = {name: REFERENCE.findall(rule) for name, rule in MIXED_SEGMENTS}
    assert 2 <= sum(bool(r) for r in refs.values()) <= 3
    for name, targets in refs.items():
        assert all(t in rules for t in targets), name

    def reaches(start: str, seen: frozenset[str]) -> None:
        for target in refs[start]:
            assert target not in seen, f"cycle through {target}"
            reaches(target, seen | {target})

    for name in rules:
        reaches(name, frozenset({name}))


def test_segments_cover_the_language():
    text = " ".join(rule for _, rule in MIXED_SEGMENTS)
    for phrase in [
        "within",
        "at least 3 times",
        "not ",
        "has never",
        "total amount of purchased within",
        "average amount of purchased",
        "last purchased more than",
        "last activity more than",
        "first purchased within",
        "country in (",
        "lead_score >=",
        "lifecycle_stage in (",
        'email ends with "@acme.com"',
        "city is unknown",
        'device_type is not "mobile"',
        "signed_up_at more than 30 days ago",
        'where url contains "/pricing"',
        "in segment",
    ]:
        assert phrase in text, phrase
    windows = [int(n) for n in re.findall(r"(\d+) days", text)]
    assert windows and all(7 <= n <= 90 for n in windows)


def test_every_event_type_a_segment_names_is_generated(stream):
    kinds = {e["type"] for e in stream}
    text = " ".join(rule for _, rule in MIXED_SEGMENTS)
    performed = re.findall(r'performed "([^"]+)"', text)
    assert performed and set(performed) <= kinds
