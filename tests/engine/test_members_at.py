"""Members as of an instant, page by page: one evaluation per answer while the log stands still."""

from __future__ import annotations

from engine.asof import AsOfSets
from engine.population import Answer
from engine.replay import verify
from engine.service import ContactEvent, Service
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_projection import SQLiteProjectionStore
from tests.clock import DAY, START, Clock


def test_paging_through_members_at_an_instant(tmp_path, monkeypatch):
    # The real evaluation runs, counted.
    evaluated = []
    answer = AsOfSets.answer

    def counted(sets: AsOfSets, segment_id: str) -> Answer:
        evaluated.append(segment_id)
        return answer(sets, segment_id)

    monkeypatch.setattr(AsOfSets, "answer", counted)
    clock = Clock(START)
    service = Service(
        SQLiteEventStore(tmp_path / "s.db", clock), SQLiteProjectionStore(tmp_path / "s.db"), clock
    )
    service.define_segment("Openers", "opened email within 2 days")
    clock.now += 1000
    service.ingest([ContactEvent(f"c{i:02d}", "email_opened") for i in range(25)])
    clock.now += 5 * DAY  # they have all left by now
    at = START + DAY

    pages, after = [], None
    while True:
        page, after = service.members("openers", at=at, after=after, limit=10)
        pages.append([m.contact_id for m in page])
        if after is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [c for p in pages for c in p] == [f"c{i:02d}" for i in range(25)]
    assert evaluated == ["openers"]  # once for the three pages
    assert service.members("openers")[0] == []

    # Events that occurred after T, and a rule change recorded after it, leave the answer
    # at T as it was: it is reused while they flow in.
    clock.now += 1000
    service.ingest([ContactEvent(f"n{i}", "email_opened") for i in range(3)])
    service.change_rule("openers", "opened email within 9 days")
    page, after = service.members("openers", at=at, after=pages[0][-1], limit=10)
    assert [m.contact_id for m in page] == pages[1]
    assert evaluated == ["openers"]

    # A late event known now changes the answer at that instant: the kept one is not reused.
    service.ingest([ContactEvent("b-late", "email_opened", occurred_at=START + DAY - 10)])
    page, _ = service.members("openers", at=at, limit=3)
    assert [m.contact_id for m in page] == ["b-late", "c00", "c01"]
    assert evaluated == ["openers", "openers"]


def test_a_static_list_may_hold_contacts_without_events_but_a_rule_on_it_does_not(tmp_path):
    clock = Clock(START)
    service = Service(
        SQLiteEventStore(tmp_path / "s.db", clock), SQLiteProjectionStore(tmp_path / "s.db"), clock
    )
    service.ingest([ContactEvent("ann", "email_opened"), ContactEvent("bob", "purchased")])
    service.define_segment("VIP", kind="static")
    service.edit_static("vip", add=["ann", "ghost"])  # ghost has no event: it does not exist
    clock.now += 1000
    rules = {
        "Listed": ('in segment "VIP"', ["ann"]),
        "Listed openers": ('in segment "VIP" and opened email', ["ann"]),
        "Unlisted": ('not in segment "VIP"', ["bob"]),
    }
    for name, (rule, _) in rules.items():
        service.define_segment(name, rule)
    clock.now += 1000

    assert [m.contact_id for m in service.members("vip", at=clock.now)[0]] == ["ann", "ghost"]
    for name, (rule, expected) in rules.items():
        segment_id = service.segment(name.lower().replace(" ", "-")).id
        assert [m.contact_id for m in service.members(segment_id)[0]] == expected
        assert [m.contact_id for m in service.members(segment_id, at=clock.now)[0]] == expected
        assert service.preview(rule).sample == expected


def test_integers_beyond_64_bits_compare_alike_everywhere(tmp_path):
    """SQLite holds them as doubles; the per-contact evaluator reads the JSON exactly. The API
    refuses them, an older log may hold some: every answer must still agree."""
    clock = Clock(START)
    service = Service(
        SQLiteEventStore(tmp_path / "s.db", clock), SQLiteProjectionStore(tmp_path / "s.db"), clock
    )
    big = 2**64 + 1  # a double rounds it to 2**64
    service.ingest([ContactEvent("c1", "purchased", {"amount": big})])
    service.ingest([ContactEvent("c1", "contact_updated", {"score": big})])
    for name, rule in (
        ("Max", f"maximum amount of purchased > {2**64}"),
        ("Score", f"score > {2**64}"),
    ):
        clock.now += 1000
        service.define_segment(name, rule)  # set-wise, over every contact
        clock.now += 1000
        service.ingest([ContactEvent("c1", "purchased", {"amount": big})])  # one by one
        segment = service.segment(name.lower())
        assert service.members(segment.id)[0] == []
        assert service.members(segment.id, at=clock.now)[0] == []
        assert not service.explain(segment.id, "c1", clock.now).value
        assert service.preview(rule, at=clock.now).count == 0
    scratch = SQLiteProjectionStore(tmp_path / "scratch.db")
    assert verify(service.log, service.projection, scratch).ok
