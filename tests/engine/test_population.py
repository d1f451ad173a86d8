"""Set-wise evaluation over SQLite gives the same members as the per-contact evaluator, and
its deadlines never come after a real change."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import Context, compile_rule, evaluate_member
from engine.history import Event, History
from engine.population import Answer, ContactsAt, SetEvaluator, required_texts
from engine.projector import Projector
from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore
from eventstore.sqlite_population import SQLitePopulationQueries
from eventstore.sqlite_projection import SQLiteProjectionStore
from grammar import ast as a
from grammar import parse
from tests.engine import reference
from tests.engine.strategies import BASE, SECOND, histories, interesting_instants, iso, rules

CONTACTS = ("ann", "bob", "cem", "dana")


def _store(path, per_contact: dict[str, list[Event]]) -> SQLiteEventStore:
    store = SQLiteEventStore(path, clock=lambda: BASE)
    batch = [
        NewEvent(f"{c}-{e.event_id}", "contact:" + c, e.type, e.data, e.occurred_at)
        for c, events in per_contact.items()
        for e in events
    ]
    if batch:
        store.append(batch)
    return store


def _members(
    store: SQLiteEventStore,
    contacts: ContactsAt,
    rule: a.Condition,
    *,
    bounds: bool = True,
    views: SQLiteProjectionStore | None = None,
) -> Answer:
    """A rule's set-wise answer over the whole log."""
    queries = SQLitePopulationQueries(store.connection)
    return SetEvaluator(
        queries, contacts, store.last_position(), bounds=bounds, views=views
    ).members(rule)


def _as_stored(store: SQLiteEventStore) -> dict[str, list[Event]]:
    found: dict[str, list[Event]] = {c: [] for c in CONTACTS}
    for s in store.read():
        found[s.stream.split(":", 1)[1]].append(
            Event(s.position, s.event_id, s.type, s.occurred_at, s.recorded_at, s.data)
        )
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rule=rules,
    groups=st.lists(histories(max_events=8), min_size=len(CONTACTS), max_size=len(CONTACTS)),
    data=st.data(),
)
def test_set_wise_members_equal_per_contact_members(tmp_path_factory, rule, groups, data):
    store = _store(
        tmp_path_factory.mktemp("pop") / "log.db", dict(zip(CONTACTS, groups, strict=True))
    )
    per_contact = _as_stored(store)
    every = list(itertools.chain.from_iterable(per_contact.values()))
    t = data.draw(st.sampled_from(interesting_instants(rule, every)))
    projection = SQLiteProjectionStore(store.path)
    Projector(store, projection).advance(BASE)

    answer = _members(store, ContactsAt(projection, t), rule)
    # The same question answered with the projection's contact view (latest values, last
    # events), which must fall back to the log for values set after t; and without the
    # deadlines, as previews and as-of queries ask it.
    for bounds in (True, False):
        viewed = _members(store, ContactsAt(projection, t), rule, bounds=bounds, views=projection)
        assert viewed.members == answer.members

    node = compile_rule(rule)
    expected = {
        c for c, evs in per_contact.items() if evaluate_member(node, Context(History(evs)), t)[0]
    }
    assert answer.members == expected
    for c, evs in per_contact.items():
        truth = reference.true_next_change(
            lambda i, evs=evs: reference.member(rule, evs, i), t, BASE + 400 * SECOND
        )
        if truth is not None:
            assert c in answer.bounds and t < answer.bounds[c] <= truth, c


def test_the_prefilter_only_names_texts_json_writes_verbatim():
    assert required_texts(a.TextMatch("url", a.TextOp.CONTAINS, 'say "hi"')) == ()
    assert required_texts(a.TextMatch("url", a.TextOp.CONTAINS, "/pricing")) == ("/pricing",)
    either = a.Or((a.Compare("form", a.CompareOp.EQ, "demo"), a.InList("form", ("a", "b"))))
    assert required_texts(either) == ("demo", "a", "b")
    assert required_texts(a.Or((either, a.Known("form", True)))) == ()


def test_values_shared_by_many_contacts_are_tested_by_type_as_well(tmp_path):
    # Python holds True == 1 == 1.0; the language does not (a number is not a yes/no).
    given_values = {"ann": True, "bob": 1, "cem": 1.0, "dana": [1]}
    store = _store(
        tmp_path / "log.db",
        {
            c: [Event(1, "e1", "contact_updated", BASE, BASE, {"score": v})]
            for c, v in given_values.items()
        },
    )
    projection = SQLiteProjectionStore(store.path)
    Projector(store, projection).advance(BASE)
    for rule, expected in (
        (a.Compare("score", a.CompareOp.EQ, 1), {"bob", "cem"}),
        (a.Compare("score", a.CompareOp.GE, 1), {"bob", "cem"}),
        (a.Known("score", True), set(given_values)),
    ):
        for views in (None, projection):
            answer = _members(store, ContactsAt(projection, BASE), rule, views=views)
            assert answer.members == expected, (rule, views)


def test_a_clause_and_a_negated_one_never_read_every_contact(tmp_path):
    day = 86_400_000
    opened = Event(1, "o", "email_opened", BASE - day, BASE, {})
    bought = Event(2, "p", "purchased", BASE - 2 * day, BASE, {})
    store = _store(
        tmp_path / "log.db",
        {"ann": [opened], "bob": [opened, bought], "cem": [bought], "dana": []},
    )
    projection = SQLiteProjectionStore(store.path)
    Projector(store, projection).advance(BASE)
    rule = a.And(
        (
            a.EventCount(a.EventSelector("email_opened"), a.Count(a.CountOp.AT_LEAST, 1), None),
            a.Not(a.EventCount(a.EventSelector("purchased"), a.Count(a.CountOp.AT_LEAST, 1), None)),
        )
    )
    for bounds in (True, False):
        contacts = ContactsAt(projection, BASE)
        answer = _members(store, contacts, rule, bounds=bounds, views=projection)
        assert answer.members == {"ann"}
        assert "existing" not in vars(contacts)  # the cached set of every contact: never built
    # Alone, the negation is the complement of the existing contacts.
    contacts = ContactsAt(projection, BASE)
    alone = _members(store, contacts, rule.items[1])
    assert alone.members == {"ann"} and vars(contacts)["existing"] == {"ann", "bob", "cem"}


def test_many_clauses_on_a_property_of_many_values(tmp_path):
    """A value per contact (an email): past _PropertyValues.MANY distinct values, the
    clauses after the first take their contacts from one read of them all, and texts are
    looked up by folded form, prefix and suffix. Some values are set after t (the log has
    the one before), some are no text."""
    emails = {
        f"c{i:04d}": f"User.{i}@{['acme.com', 'Example.ORG', 'straße.de'][i % 3]}"
        for i in range(1_500)
    }
    emails["c0007"], emails["c0008"] = 7, None
    # And a date per contact, for `ago` clauses (which also give deadlines).
    signed = {c: iso(BASE - (i % 700) * 3_600_000) for i, c in enumerate(emails)}
    events = [
        NewEvent(
            f"e-{c}", "contact:" + c, "contact_updated", {"email": e, "signed": signed[c]}, BASE
        )
        for c, e in emails.items()
    ]
    events += [  # changed after t: at t, the value before
        NewEvent(f"late-{c}", "contact:" + c, "contact_updated", {"email": "x@late.io"}, BASE + 9)
        for c in ("c0003", "c0010")
    ]
    store = SQLiteEventStore(tmp_path / "log.db", clock=lambda: BASE + 10)
    store.append(events)
    projection = SQLiteProjectionStore(store.path)
    Projector(store, projection).advance(BASE + 10)
    text = (
        'email ends with "@acme.com" and email starts with "user.1"'
        ' or email is "USER.2@example.org"'
        ' or email contains "strasse" and email in ("user.5@straße.de", "x@late.io", "none")'
        ' or email is not "user.4@example.org" and email ends with "0@late.io"'
        ' or email starts with "nobody" or email > 5'
        " or signed more than 20 days ago and signed less than 25 days ago"
        " or signed less than 1 hours ago"
    )
    rule = parse(text)
    node = compile_rule(rule)
    histories: dict[str, list[Event]] = {}
    for s in store.read():
        histories.setdefault(s.stream.split(":", 1)[1], []).append(
            Event(s.position, s.event_id, s.type, s.occurred_at, s.recorded_at, s.data)
        )
    for t in (BASE, BASE + 9):
        expected = {
            c for c, evs in histories.items() if evaluate_member(node, Context(History(evs)), t)[0]
        }
        for bounds in (False, True):
            contacts = ContactsAt(projection, t)
            viewed = _members(store, contacts, rule, bounds=bounds, views=projection)
            assert viewed.members == expected, (t, bounds)
        assert len(expected) > 100


class CountingQueries(SQLitePopulationQueries):
    def __init__(self, connection) -> None:
        super().__init__(connection)
        self.reads = 0

    def events(self, query):
        self.reads += 1
        return super().events(query)


def test_clauses_that_read_the_same_events_read_them_once(tmp_path):
    histories = {
        f"c{i}": [
            Event(j, f"p{j}", "purchased", BASE - j * SECOND, BASE, {"amount": (i * 7 + j) % 50})
            for j in range(1, 6)
        ]
        for i in range(30)
    }
    store = _store(tmp_path / "log.db", histories)
    projection = SQLiteProjectionStore(store.path)
    Projector(store, projection).advance(BASE)
    rule = parse(
        "total amount of purchased where amount > 10 within 1 day >= 60"
        " or average amount of purchased where amount < 40 within 1 day > 30"
        " or purchased where amount >= 45 at least 2 times within 1 day"
    )
    queries = CountingQueries(store.connection)
    contacts = ContactsAt(projection, BASE)
    found = SetEvaluator(queries, contacts, store.last_position(), views=projection).members(rule)
    node = compile_rule(rule)
    expected = {
        c for c, evs in histories.items() if evaluate_member(node, Context(History(evs)), BASE)[0]
    }
    assert found.members == expected and 0 < len(expected) < 30
    # The day up to t, and after t (what arrives later): each once for the three clauses.
    assert queries.reads == 2
