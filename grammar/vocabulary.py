"""The friendly verbs of the rule language: one table, read by the grammar and the formatter.

To add a verb, add a row. The grammar builds its `VERB` terminal from these phrases
(see ``verb_grammar``), so ``segment.lark`` never changes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache

# What an event type may be (the API refuses events of any other): a rule that names another
# could never hold.
EVENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
EVENT_TYPE_TEXT = (
    "an event type is 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
)
# What a property's name may be, likewise: a rule can name any the API takes.
MAX_PROPERTY_NAME = 200
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def property_name_problem(name: str) -> str | None:
    """Why no property can have this name, or None if one can."""
    if not 1 <= len(name) <= MAX_PROPERTY_NAME:
        return f"a property name has 1-{MAX_PROPERTY_NAME} characters, not {len(name)}"
    if CONTROL.search(name):
        return f"the property name {name!r} has a control character"
    return None


def rule_property_problem(name: str) -> str | None:
    """Why a rule cannot name this property, or None if it can."""
    if '"' in name or "\\" in name:
        # SQLite's JSON paths (as of 3.40) cannot spell either inside a quoted name, so the
        # evaluation of every contact at once could not find such a property.
        return 'a rule cannot name a property whose name has " or \\ in it'
    return property_name_problem(name)


@dataclass(frozen=True)
class Verb:
    """`visited page` means events of type `page_viewed`; `visited page "/x"` filters `url`."""

    phrase: str
    event_type: str
    shorthand: str | None = None


# The first row for an event type is the one the formatter writes.
VERBS: tuple[Verb, ...] = (
    Verb("opened email", "email_opened", "campaign"),
    Verb("clicked email", "email_clicked", "campaign"),
    Verb("visited page", "page_viewed", "url"),
    Verb("submitted form", "form_submitted", "form"),
    Verb("purchased", "purchased"),
    Verb("signed up", "signed_up"),
    Verb("unsubscribed", "unsubscribed"),
)


@cache
def _by_phrase(verbs: tuple[Verb, ...]) -> dict[str, Verb]:
    return {v.phrase: v for v in verbs}


@cache
def _by_type(verbs: tuple[Verb, ...]) -> dict[str, Verb]:
    found: dict[str, Verb] = {}
    for verb in verbs:
        found.setdefault(verb.event_type, verb)
    return found


def normalize(words: str) -> str:
    """A phrase as the table spells it: lower case, single spaces."""
    return " ".join(words.lower().split())


def verb_for_phrase(words: str) -> Verb | None:
    """The verb a phrase of the rule names (any case and spacing), or None."""
    return _by_phrase(VERBS).get(normalize(words))


def verb_for_type(event_type: str) -> Verb | None:
    """The verb the formatter writes for an event type, or None for `performed "..."`."""
    return _by_type(VERBS).get(event_type)


def nearest_phrase(words: str) -> str | None:
    """The verb phrase closest to a misspelled one, if any is close."""
    found = difflib.get_close_matches(normalize(words), list(_by_phrase(VERBS)), n=1, cutoff=0.7)
    return found[0] if found else None


def verb_grammar() -> str:
    """A Lark grammar that defines the `VERB` terminal: every phrase, any case and spacing.

    Longer phrases come first so that a phrase is never cut short by a shorter one, and a
    phrase must end at a word boundary so that `purchased_at` stays a property name.
    """
    return f"VERB.2: /(?:{_alternatives()})(?!\\w)/i\n"


def is_verb(words: str) -> bool:
    """Whether the VERB terminal reads these words whole (as the lexer would: any case)."""
    return re.fullmatch(_alternatives(), words, re.IGNORECASE) is not None


def _alternatives() -> str:
    phrases = sorted((v.phrase for v in VERBS), key=len, reverse=True)
    return "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)
