"""Replay rebuilds the projection; verification finds any difference from the live one."""

from __future__ import annotations

import engine.service
from engine.projector import Projector
from engine.replay import replay, verify
from engine.service import ContactEvent, Service
from engine.timeline import replay_timeline
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from tests.clock import DAY, START, Clock


def live_service(tmp_path):
    clock = Clock(START)
    log = SQLiteEventStore(tmp_path / "live.db", clock)
    projection = SQLiteProjectionStore(tmp_path / "live.db")
    service = Service(log, projection, clock)
    service.define_segment("Openers", "opened email within 2 days")
    service.define_segment("Quiet openers", 'in segment "Openers" and not purchased within 7 days')
    for day in range(5):
        clock.now = START + day * DAY
        service.ingest([ContactEvent(f"c{day % 3}", "email_opened")])
        if day == 3:
            service.ingest([ContactEvent("c1", "purchased", {"amount": 12})])
    clock.now = START + 9 * DAY
    service.catch_up()
    return service, clock


def rows(projection):
    return (
        [(t.segment_id, t.contact_id, t.kind, t.at, t.cause) for t in projection.all_transitions()],
        list(projection.all_members()),
    )


def test_replay_rebuilds_exactly_what_the_live_run_built(tmp_path):
    service, clock = live_service(tmp_path)
    before = rows(service.projection)
    assert len(before[0]) >= 6  # entries and time-driven exits happened
    lose_transitions_and_members(service.projection)
    replay(service.log, service.projection, clock())
    assert rows(service.projection) == before


def lose_transitions_and_members(projection: SQLiteProjectionStore) -> None:
    """Damage a projection behind its back (so that a replay that did nothing shows)."""
    with projection.session() as session:
        session.conn.execute("DELETE FROM transitions")
        session.conn.execute("DELETE FROM memberships")
    assert rows(projection) == ([], [])


def test_verify_agrees_with_an_untouched_projection(tmp_path):
    service, _ = live_service(tmp_path)
    report = verify(service.log, service.projection, SQLiteProjectionStore(tmp_path / "s.db"))
    assert report.ok
    assert report.transitions == len(rows(service.projection)[0])


def test_verify_reports_a_tampered_projection(tmp_path):
    service, _ = live_service(tmp_path)
    conn = service.projection._conn()  # an operator's stray edit, straight in SQL
    conn.execute("DELETE FROM transitions WHERE id = (SELECT max(id) FROM transitions)")
    report = verify(service.log, service.projection, SQLiteProjectionStore(tmp_path / "s.db"))
    assert not report.ok
    assert any("transition" in line for line in report.differences)


def test_a_service_starting_on_an_empty_projection_rebuilds_it_set_wise(tmp_path, monkeypatch):
    service, clock = live_service(tmp_path)
    # The real rebuild runs, watched (the projector, entry by entry, would fill the
    # projection just the same).
    rebuilt = []

    def watched(*args, **kwargs):
        rebuilt.append(replay_timeline(*args, **kwargs))
        return rebuilt[-1]

    monkeypatch.setattr(engine.service, "replay_timeline", watched)
    fresh = Service(
        service.log, SQLiteProjectionStore(tmp_path / "fresh.db"), clock, rebuild_from=1
    )
    fresh.catch_up()
    assert len(rebuilt) == 1  # once, and it did not refuse the log
    assert rows(fresh.projection) == rows(service.projection)
    assert fresh.projection.checkpoint() == service.projection.checkpoint()
    # Later work goes on incrementally from there.
    clock.now += DAY
    fresh.ingest([ContactEvent("c9", "email_opened")])
    service.catch_up()
    assert rows(fresh.projection) == rows(service.projection)


def test_a_rebuild_into_an_empty_projection_leaves_one_that_was_filled_meanwhile(tmp_path):
    service, clock = live_service(tmp_path)
    before = rows(service.projection)
    assert replay_timeline(service.log, service.projection, clock(), only_if_empty=True) is None
    assert rows(service.projection) == before

    empty = SQLiteProjectionStore(tmp_path / "empty.db")
    replay_timeline(service.log, empty, clock(), only_if_empty=True)
    assert rows(empty) == before


def test_properties_named_in_quotes_replay_as_they_ran_live(tmp_path):
    clock = Clock(START)
    log = SQLiteEventStore(tmp_path / "live.db", clock)
    service = Service(log, SQLiteProjectionStore(tmp_path / "live.db"), clock)
    service.define_segment(
        "Odd",
        'property "lead score" >= 50 and property "utm.source" is "ads"'
        ' and total property "order value" of purchased within 2 days >= 70',
    )
    for day, (contact, score, value) in enumerate([("a", 60, 80), ("b", 40, 90), ("c", 70, 30)]):
        clock.now = START + day * DAY
        props = {"lead score": score, "utm.source": "ads"}
        service.ingest(
            [
                ContactEvent(contact, "contact_updated", props),
                ContactEvent(contact, "purchased", {"order value": value}),
            ]
        )
    clock.now = START + 9 * DAY
    service.catch_up()
    assert [(t.contact_id, t.kind) for t in service.projection.all_transitions()] == [
        ("a", "entered"),
        ("a", "exited"),  # two days after the purchase: by time
    ]
    for method in ("timeline", "projector"):
        scratch = SQLiteProjectionStore(tmp_path / f"{method}.db")
        assert verify(log, service.projection, scratch, method=method).ok


def test_a_backlog_of_deadlines_commits_in_slices_with_the_same_result(tmp_path):
    """After downtime, time-driven changes are applied a slice at a time (a crash keeps what
    was committed, other writers get their turn), and the result is the same."""
    clock = Clock(START)
    log = SQLiteEventStore(tmp_path / "live.db", clock)
    projection = SQLiteProjectionStore(tmp_path / "live.db")
    service = Service(log, projection, clock)
    service.define_segment("Openers", "opened email within 1 day")
    for i in range(300):  # exits due one second apart, a day later
        clock.now = START + i * 1000
        service.ingest([ContactEvent(f"c{i}", "email_opened")])
    clock.now = START + 2 * DAY  # the service was down meanwhile

    with projection.session() as session:
        commits: list[str] = []
        session.conn.set_trace_callback(
            lambda sql: commits.append(sql) if sql == "COMMIT" else None
        )
    Projector(log, projection, deadline_slice=50).advance(clock.now)
    assert len(commits) >= 6  # 300 exits, 50 to a transaction
    assert projection.checkpoint()[1] == clock.now
    assert len([t for t in projection.all_transitions() if t.kind == "exited"]) == 300

    scratch = SQLiteProjectionStore(tmp_path / "whole.db")
    Projector(log, scratch, deadline_slice=10**9).advance(clock.now)
    assert rows(scratch) == rows(projection)
