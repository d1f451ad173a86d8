"""The verb table: one row adds a verb to the language, with no change to the grammar."""

from __future__ import annotations

import pytest

from grammar import RuleError, format_rule, parse, vocabulary
from grammar.diagnose import _example_error
from grammar.parser import lark_parser
from tests.grammar.builders import cmp, dur, ev


@pytest.fixture
def whitepapers(monkeypatch):
    """The table with one more verb; the cached parser is rebuilt before and after."""
    row = vocabulary.Verb("downloaded whitepaper", "whitepaper_downloaded", "title")
    monkeypatch.setattr(vocabulary, "VERBS", (*vocabulary.VERBS, row))
    lark_parser.cache_clear()
    _example_error.cache_clear()
    yield row
    monkeypatch.undo()
    lark_parser.cache_clear()
    _example_error.cache_clear()


def test_a_new_row_is_a_new_verb_with_its_shorthand(whitepapers):
    rule = parse('Downloaded  Whitepaper "pricing" within 7 days')
    assert rule == ev("whitepaper_downloaded", window=dur(7), where=cmp("title", "EQ", "pricing"))
    assert format_rule(rule) == 'downloaded whitepaper "pricing" within 7 days'
    assert parse('performed "whitepaper_downloaded"') == ev("whitepaper_downloaded")


def test_a_new_verb_is_suggested_when_misspelt(whitepapers):
    with pytest.raises(RuleError) as caught:
        parse("downloded whitepaper within 7 days")
    first = caught.value.problems[0]
    assert first.message == 'unknown event "downloded whitepaper"'
    assert first.hint == 'did you mean "downloaded whitepaper"?'


def test_without_the_row_the_words_are_not_a_verb():
    with pytest.raises(RuleError, match="neither a known event nor a comparison"):
        parse("downloaded whitepaper within 7 days")


def test_the_table_maps_phrases_and_types_both_ways():
    assert vocabulary.verb_for_phrase("Visited\n  PAGE") == vocabulary.Verb(
        "visited page", "page_viewed", "url"
    )
    assert vocabulary.verb_for_type("form_submitted") == vocabulary.Verb(
        "submitted form", "form_submitted", "form"
    )
    assert vocabulary.verb_for_type("trial_started") is None
    assert vocabulary.nearest_phrase("sigend up") == "signed up"
    assert vocabulary.nearest_phrase("bought") is None


def test_a_verb_ends_at_a_word_boundary():
    assert parse("purchased_at is 1") == cmp("purchased_at", "EQ", 1)
    assert parse("signed up") == ev("signed_up")
