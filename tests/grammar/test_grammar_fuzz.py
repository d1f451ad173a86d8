"""Whatever the text, `parse` gives an AST or a RuleError whose problems point into it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grammar import RuleError, format_rule, parse
from tests.grammar.valid_rules import VALID

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEEDS = [text for text, _ in VALID]
_SYMBOLS = "and or not ( ) , = != > >= < <= \" ' @ & - . 7 0 -1 2.5 1e999"
_KEYWORDS = (
    "within in the last less more than ago at least most exactly fewer times time where is "
    "known unknown between contains starts ends with before after true false has never total "
    "average minimum maximum of first performed activity segment opened email clicked visited "
    "page submitted form purchased signed up days weeks withn purchsed"
)
WORDS = [
    *_SYMBOLS.split(),
    *_KEYWORDS.split(),
    "\n",
    '"x"',
    "2026-01-01",
    "2026-02-30T25:00:00Z",
    "\u201cDE\u201d",
]
rule_like_text = st.text(
    alphabet=st.sampled_from(list("abcdeinorstwy_ ()\"',=<>!-.0123456789\n\t@&")), max_size=60
)


def _check(text: str) -> None:
    try:
        rule = parse(text)
    except RuleError as error:
        assert error.problems
        lines = text.split("\n")
        for problem in error.problems:
            assert 1 <= problem.line <= len(lines)
            assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1
            assert problem.message
        return
    assert parse(format_rule(rule)) == rule


@SETTINGS
@given(st.text(max_size=80))
def test_any_text_gives_an_ast_or_a_rule_error(text):
    _check(text)


@SETTINGS
@given(rule_like_text)
def test_text_made_of_the_rule_alphabet_gives_an_ast_or_a_rule_error(text):
    _check(text)


@st.composite
def mutated_rules(draw: st.DrawFn) -> str:
    """A valid rule with characters or words deleted, inserted, swapped or replaced."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        words = text.split(" ")
        how = draw(st.sampled_from(["drop", "insert", "swap", "replace", "char", "cut"]))
        at = draw(st.integers(0, max(0, len(words) - 1)))
        if how == "drop" and len(words) > 1:
            del words[at]
        elif how == "insert":
            words.insert(at, draw(st.sampled_from(WORDS)))
        elif how == "swap":
            other = draw(st.integers(0, max(0, len(words) - 1)))
            words[at], words[other] = words[other], words[at]
        elif how == "replace":
            words[at] = draw(st.sampled_from(WORDS))
        elif how == "char":
            joined = " ".join(words)
            pos = draw(st.integers(0, len(joined)))
            words = (joined[:pos] + draw(st.characters()) + joined[pos + 1 :]).split(" ")
        else:
            words = " ".join(words)[: draw(st.integers(0, len(text)))].split(" ")
        text = " ".join(words)
    return text


@SETTINGS
@given(mutated_rules())
def test_a_mutated_rule_gives_an_ast_or_a_rule_error(text):
    _check(text)
