"""Rules that are refused: where, what, what was expected and how to fix it."""

from __future__ import annotations

import time

import pytest

from grammar import Problem, RuleError, parse
from grammar.checks import MAX_CLAUSES, MAX_NESTING, MAX_RULE_LENGTH
from grammar.diagnose import CATALOGUE, _example_error, _raise_example, expected_words

CONDITION = ('a condition, such as country is "DE" or purchased within 7 days',)
AFTER_EVENT = (
    "a window such as within 7 days",
    "a count such as at least 2 times",
    "a quoted text",
    "`where`",
    "`and`",
    "`or`",
    "the end of the rule",
)
COMPARISON = ("a comparison such as is, >, between, in, contains, before or more than ... ago",)
VALUE = (
    "a quoted text",
    "a number",
    "a date such as 2026-01-01",
    "`true`",
    "`false`",
)
UNIT = ("a time unit (seconds, minutes, hours, days, weeks)",)
END = ("`and`", "`or`", "the end of the rule")
ANY = object()  # the expected list is not checked for this case

# (rule, line, column, message, hint, expected) of the first problem.
TYPES = (
    "an event type is 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
)
INVALID: list[tuple[str, int, int, str, str | None, object]] = [
    # ---- misspellings ----
    (
        "opened email withn 7 days",
        1, 14, 'unexpected word "withn"', 'did you mean "within"?', AFTER_EVENT,
    ),
    ('country iz "DE"', 1, 9, 'unknown comparison "iz"', 'did you mean "is"?', COMPARISON),
    (
        "purchsed within 7 days",
        1, 1, 'unknown word "purchsed"', 'did you mean "purchased"?', CONDITION,
    ),
    (
        "opend email within 7 days",
        1, 1, 'unknown event "opend email"', 'did you mean "opened email"?', CONDITION,
    ),
    ("nto purchased", 1, 1, 'unknown word "nto"', 'did you mean "not"?', CONDITION),
    (
        "purchased at lest 3 times",
        1, 14, 'unexpected word "lest"', 'did you mean "least"?', ("`least`", "`most`"),
    ),
    (
        "opened email within 7 dayz",
        1, 23, 'unknown time unit "dayz"', 'did you mean "days"?', UNIT,
    ),
    # ---- unknown words ----
    (
        "downloaded whitepaper within 7 days",
        1, 1, '"downloaded whitepaper" is neither a known event nor a comparison',
        'for an event of another type, write performed "downloaded_whitepaper"', CONDITION,
    ),
    (
        "opened email within 7 months",
        1, 23, 'unknown time unit "months"', "use days or weeks, such as 30 days or 52 weeks", UNIT,
    ),
    (
        "opened email within 7 fortnights",
        1, 23, 'unknown time unit "fortnights"',
        "the units are seconds, minutes, hours, days or weeks", UNIT,
    ),
    ("purchased within seven days", 1, 18, "write numbers in digits", "write 7", ("a number",)),
    (
        "purchased once",
        1, 11, '"once" is not a count the rule language reads',
        "write exactly 1 time or at least 1 time", ANY,
    ),
    # ---- quotes ----
    ("country is DE", 1, 12, "text must be in quotes", 'write "DE"', ANY),
    (
        "submitted form demo",
        1, 16, "text must be in quotes", 'write submitted form "demo"', AFTER_EVENT,
    ),
    (
        "performed trial_started",
        1, 11, "the event type must be in quotes", 'write performed "trial_started"',
        ("a quoted text",),
    ),
    (
        'country is "DE',
        1, 12, "the quoted text that starts here (line 1, column 12) is never closed",
        'end the text with " on the same line', ANY,
    ),
    (
        "country is \u201cDE\u201d",
        1, 12, "\u201c is a typographic quote, which the rule language does not read",
        'use straight quotes: "..."', ANY,
    ),
    # ---- missing pieces ----
    ("", 1, 1, "the rule is empty", 'write a condition, such as country is "DE"', CONDITION),
    ("  \n ", 1, 1, "the rule is empty", 'write a condition, such as country is "DE"', CONDITION),
    (
        'country is "DE" and',
        1, 20, 'the rule ends after "and": a condition is missing', None, CONDITION,
    ),
    (
        "x is 1 and y is 2 and",
        1, 22, 'the rule ends after "and": a condition is missing', None, CONDITION,
    ),
    ("opened email within 7", 1, 22, "the time unit is missing", "for example: 7 days", UNIT),
    (
        "purchased at least 3",
        1, 21, '"times" is missing after the count', "write at least 3 times", ("`times`",),
    ),
    (
        "signed_up_at more than 30 days",
        1, 31, 'the rule ends too early, after "days"', 'add "ago"', ("`ago`",),
    ),
    (
        "(opened email within 7 days or clicked email",
        1, 45, "a parenthesis is never closed", "the ( at line 1, column 1 needs a )", ANY,
    ),
    (
        "total amount of purchased",
        1, 26, "the comparison is missing", "for example: total amount of purchased >= 500",
        ("a comparison such as >= 500", "a window such as within 7 days", "`where`"),
    ),
    (
        "last purchased",
        1, 15, '"last purchased" needs a time',
        "for example: last purchased more than 30 days ago, or last purchased within 7 days",
        ("a window such as within 7 days", "`more than`", "`where`"),
    ),
    (
        "in segment",
        1, 11, "the segment name is missing", 'for example: in segment "engaged"',
        ('a segment name such as "engaged"',),
    ),
    (
        "never",
        1, 6, 'the event is missing after "never"', "for example: purchased",
        ("an event such as purchased or opened email",),
    ),
    (
        "purchased where",
        1, 16, 'the rule ends after "where": a property condition is missing', None,
        ("a property name", "`not`", "`(`"),
    ),
    (
        "opened email where campaign",
        1, 28, '"campaign" needs a comparison', 'for example: campaign is "..."', COMPARISON,
    ),
    (
        "total amount purchased >= 5",
        1, 14, '"of" is missing', "write total amount of purchased", ("`of`",),
    ),
    (
        "total of purchased >= 5",
        1, 7, 'which property should "total" use?',
        "name it before of, such as total amount of purchased", ("a property name",),
    ),
    (
        'country in ()',
        1, 13, "the list is empty", 'put at least one value in it, such as ("DE")', VALUE,
    ),
    ("x in (1 2)", 1, 9, "unexpected number 2", 'is a "," missing before it?', ("`,`", "`)`")),
    # ---- words in the wrong place ----
    (
        'purchased where amount > 100 and currency is "EUR" at least 2 times',
        1, 52, '"at" cannot follow the second condition of a where',
        "to filter on several properties, put them in parentheses: where (... and ...)", END,
    ),
    (
        "opened email more than 30 days ago",
        1, 27, '"more than 30 days ago" cannot follow an event',
        "to ask when it last happened, write last opened email more than 30 days ago; "
        "to count in a window, write within 30 days",
        ("`times`",),
    ),
    (
        "last purchased 30 days ago",
        1, 16, '"last purchased" needs "more than" or "within" before the time',
        "write last purchased more than 30 days ago, or last purchased within 30 days", ANY,
    ),
    (
        "purchased 3 times",
        1, 11, "a number of times needs at least, at most, exactly, more than or fewer than",
        "write at least 3 times or exactly 3 times", ANY,
    ),
    ("purchased 7 days", 1, 11, "a window needs within before it", "write within 7 days", ANY),
    (
        "has purchased",
        1, 5, '"has" is only used before "never"', 'write has never ..., or leave out "has"',
        ("`never`",),
    ),
    (
        'country is "DE" city is "Berlin"',
        1, 17, 'unexpected word "city"', 'is an "and" or an "or" missing before it?', END,
    ),
    (
        'country is "DE" and and city is "x"',
        1, 21, '"and" twice in a row', "remove one, or put a condition between them", CONDITION,
    ),
    (
        '"DE"',
        1, 1, 'a condition cannot start with text "DE"',
        'start with a property (country is "DE"), an event (purchased), not, or (', CONDITION,
    ),
    (
        'purchased where in segment "x"',
        1, 17, "`where` filters events by their properties; it cannot hold events or segments",
        'write a property condition, such as where amount > 100 or where url contains "/x"',
        ("a property name", "`not`", "`(`"),
    ),
    (
        "x is 1 and y is 2 )",
        1, 19, "this ) closes no (", "remove it, or add the ( it belongs to", END,
    ),
    ("x is 1 && y is 2", 1, 8, 'unexpected character "&"', 'write "and"', END),
    ("x is 1 @ y", 1, 8, 'unexpected character "@"', None, END),
    (
        "never purchased at least 2 times",
        1, 17, '"never" already says how many times: none',
        "remove the count, or write the event without never and with its count", ANY,
    ),
    (
        'country is "DE" within 7 days',
        1, 17, '"within" cannot follow a condition on a property',
        "a count or a window only follows an event", END,
    ),
    (
        "last purchased at least 2 times",
        1, 16, '"last purchased" takes a time, not a count',
        "to count, leave out last: purchased at least 2 times; "
        "for a time, write last purchased more than 30 days ago",
        ("a window such as within 7 days", "`more than`", "`where`"),
    ),
    (
        "purchased within 7 days at least 2 times within 3 days",
        1, 42, '"within" cannot come here: an event takes one count and one window',
        "remove the second one, or join two events with and", END,
    ),
    (
        'country is "DE" in segment "x"',
        1, 17, 'unexpected "in"', 'is an "and" or an "or" missing before it?', END,
    ),
    (
        "total amount of purchased at least 2 times > 5",
        1, 27, "an aggregate takes no count: it is compared with a number",
        "for example: total amount of purchased >= 500", ANY,
    ),
    # ---- meaning ----
    (
        "activity within 7 days",
        1, 1, "`activity` (any event) can only be used in `last activity` or `first activity`",
        'name the event, such as purchased or performed "trial_started"', (),
    ),
    (
        'purchased "x"',
        1, 11, '"purchased" takes no text after it',
        'to filter its events, write purchased where <property> is "..."', (),
    ),
    (
        "age between 34 and 18",
        1, 1, "the bounds of between are reversed, so nothing is between them",
        "write age between 18 and 34", (),
    ),
    (
        'lead_score > "50"',
        1, 1, '"lead_score >" compares numbers or dates, not the text "50"',
        "use is or is not to compare text", (),
    ),
    ("x > true", 1, 1, '"x >" compares numbers or dates, not true', None, ()),
    ("email contains 5", 1, 1, '"email contains" needs a quoted text, not the number 5', None, ()),
    (
        'x after "yesterday"',
        1, 1, '"x after" needs a date such as 2026-01-01, not the text "yesterday"', None, (),
    ),
    (
        'total amount of purchased >= "500"',
        1, 1, 'total amount is compared with a number, not the text "500"', None, (),
    ),
    (
        "age between 1 and 2026-01-01",
        1, 1, '"age between" needs two numbers or two dates, not one of each', None, (),
    ),
    (
        'age between "a" and "b"',
        1, 1, '"age between" needs numbers or dates, not the text "a"', None, (),
    ),
    (
        "purchased at least 0 times",
        1, 11, '"at least 0 times" is always true', "remove it, or count at least 1 time", (),
    ),
    (
        "purchased fewer than 0 times",
        1, 11, '"fewer than 0 times" is never true', "to ask for none, write has never ...", (),
    ),
    (
        "purchased at least -1 times",
        1, 11, '"at least -1 times": a number of times cannot be negative', None, (),
    ),
    (
        "purchased at least 2.5 times",
        1, 20, "a number of times must be a whole number, not 2.5", None, (),
    ),
    ("opened email within 0 days", 1, 21, '"0 days" is not a length of time', "use at least 1", ()),
    (
        "opened email within 522 weeks",
        1, 21, '"522 weeks" is longer than the limit of 3650 days (about 10 years)', None, (),
    ),
    (
        "last purchased more than 3651 days ago",
        1, 26, '"3651 days" is longer than the limit of 3650 days (about 10 years)', None, (),
    ),
    (
        "purchased within 1.5 days",
        1, 18, "an amount of time must be a whole number, not 1.5", None, (),
    ),
    (
        "purchased where signed_up_at more than 3 days ago",
        1, 17,
        '"signed_up_at ... ago" cannot filter events: which events match would change as time '
        "passes",
        "use a window instead: ... within 30 days", (),
    ),
    (
        "total amount of activity > 3",
        1, 17, "`activity` (any event) can only be used in `last activity` or `first activity`",
        'name the event, such as purchased or performed "trial_started"', (),
    ),
    (
        "x after 2026-02-30",
        1, 9, "2026-02-30 is not a valid date (day is out of range for month)", None, (),
    ),
    (
        "x after 2026-01-01T09:00:00.2501Z",
        1, 9,
        "2026-01-01T09:00:00.2501Z has more than milliseconds; use at most 3 digits after the "
        "seconds",
        None, (),
    ),
    (
        "x after 2026-01-01T09:00:00+25:00",
        1, 9, "2026-01-01T09:00:00+25:00 has an impossible time zone offset", None, (),
    ),
    ("x is 1e999", 1, 6, "1e999 is too large a number", None, ()),
    ('performed ""', 1, 11, "the event type is empty", None, ()),
    ('performed "trial started"', 1, 11, 'no event has the type "trial started"', TYPES, ()),
    ("performed '-x'", 1, 11, "no event has the type '-x'", TYPES, ()),
    ('in segment ""', 1, 12, "the segment name is empty", None, ()),
    # ---- on other lines ----
    (
        'country is "DE" and\ncity is \'Berlin',
        2, 9, "the quoted text that starts here (line 2, column 9) is never closed",
        "end the text with ' on the same line", ANY,
    ),
    (
        'country is "DE"\n  and purchased\n  within 7 dayz',
        3, 12, 'unknown time unit "dayz"', 'did you mean "days"?', UNIT,
    ),
    (
        "country is 'DE' and\n\n   age between 40 and 30",
        3, 4, "the bounds of between are reversed, so nothing is between them",
        "write age between 30 and 40", (),
    ),
]  # fmt: skip


def test_the_table_is_large():
    assert len(INVALID) >= 40


@pytest.mark.parametrize(
    ("rule", "line", "column", "message", "hint", "expected"),
    INVALID,
    ids=[repr(case[0]) for case in INVALID],
)
def test_an_invalid_rule_is_refused_with_its_first_problem(
    rule, line, column, message, hint, expected
):
    with pytest.raises(RuleError) as caught:
        parse(rule)
    first = caught.value.problems[0]
    assert (first.line, first.column, first.message) == (line, column, message)
    assert first.hint == hint
    if expected is not ANY:
        assert first.expected == expected


MANY: list[tuple[str, list[tuple[int, int, str]]]] = [
    (
        'opened email withn 7 days and country iz "DE" or purchsed within 30 days',
        [
            (1, 14, 'unexpected word "withn"'),
            (1, 39, 'unknown comparison "iz"'),
            (1, 50, 'unknown word "purchsed"'),
        ],
    ),
    (
        "purchased at lest 3 tims",
        [(1, 14, 'unexpected word "lest"'), (1, 21, 'unexpected word "tims"')],
    ),
    (
        'country is "DE"\n  and (opened email\n       withn 7 days or\n'
        "       purchased at least 2 tims)",
        [(3, 8, 'unexpected word "withn"'), (4, 29, 'unexpected word "tims"')],
    ),
    (
        '(country iz "DE" or (purchased at lest 2 times and x > 1)) and y is 2',
        [(1, 10, 'unknown comparison "iz"'), (1, 35, 'unexpected word "lest"')],
    ),
    (
        'country is DE and\ncity is "Berlin" and purchased within 7 dayz',
        [(1, 12, "text must be in quotes"), (2, 41, 'unknown time unit "dayz"')],
    ),
    (
        "country is DE and x iz 1",
        [(1, 12, "text must be in quotes"), (1, 21, 'unknown comparison "iz"')],
    ),
    ("last purchased at least 2 times", [(1, 16, '"last purchased" takes a time, not a count')]),
    (
        "age between 34 and 18 and purchased at least 0 times and activity within 7 days",
        [
            (1, 1, "the bounds of between are reversed, so nothing is between them"),
            (1, 37, '"at least 0 times" is always true'),
            (
                1,
                58,
                "`activity` (any event) can only be used in `last activity` or `first activity`",
            ),
        ],
    ),
]


@pytest.mark.parametrize(("rule", "problems"), MANY, ids=[repr(r) for r, _ in MANY])
def test_every_problem_is_reported(rule, problems):
    with pytest.raises(RuleError) as caught:
        parse(rule)
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == problems


def test_the_error_message_sums_up_every_problem():
    with pytest.raises(RuleError) as caught:
        parse("purchased at lest 3 tims")
    assert str(caught.value) == (
        "the rule has 2 problems: "
        'line 1, column 14: unexpected word "lest"; expected `least` or `most` '
        '(did you mean "least"?); '
        'line 1, column 21: unexpected word "tims"; expected `times` (did you mean "times"?)'
    )
    assert caught.value.problems[0].end_column == 18


def test_render_points_at_each_problem():
    rule = 'country is "DE"\n  and purchased withn 7 days'
    with pytest.raises(RuleError) as caught:
        parse(rule)
    lines = caught.value.render(rule).splitlines()
    assert lines[1:] == ["    and purchased withn 7 days", "                  ^^^^^"]


def test_a_rule_error_is_a_value_error_with_problems():
    with pytest.raises(ValueError, match="the rule has a problem"):
        parse("x is")
    with pytest.raises(ValueError, match="needs at least one problem"):
        RuleError([])
    assert (
        str(Problem(2, 3, "m", ("`a`", "`b`"), "h"))
        == "line 2, column 3: m; expected `a` or `b` (h)"
    )


def test_a_rule_that_is_not_text_is_a_type_error():
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


# ---- limits ----


def test_a_rule_longer_than_the_limit_is_refused_where_it_goes_over():
    rule = 'country is "DE" or\n' + " or ".join(['x is "abc"'] * 400)
    assert len(rule) > MAX_RULE_LENGTH
    with pytest.raises(RuleError) as caught:
        parse(rule)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, MAX_RULE_LENGTH - 19 + 1)
    assert problem.message == f"the rule is {len(rule):,} characters long; the limit is 4,000"


def test_nesting_deeper_than_the_limit_is_refused_at_the_level_that_goes_over():
    deep = "(" * (MAX_NESTING + 1) + "x is 1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(RuleError) as caught:
        parse(deep)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (1, MAX_NESTING + 1)
    assert problem.message == (
        "this part is nested 11 levels deep in parentheses and `not`; the limit is 10"
    )
    assert parse("(" * MAX_NESTING + "x is 1" + ")" * MAX_NESTING) is not None
    nots = "not " * (MAX_NESTING + 1) + "x is 1"
    with pytest.raises(RuleError, match="nested 11 levels"):
        parse(nots)


def test_nesting_counts_the_groups_of_event_filters():
    rule = "(" * 9 + "purchased where (a is 1 and (b is 2 or c is 3))" + ")" * 9
    with pytest.raises(RuleError) as caught:
        parse(rule)
    assert caught.value.problems[0].column == 9 + len("purchased where (a is 1 and ") + 1


def test_very_deep_nesting_is_refused_without_recursion():
    rule = "(" * 1900 + "x is 1" + ")" * 1900
    with pytest.raises(RuleError, match="nested 11 levels"):
        parse(rule)


def test_more_clauses_than_the_limit_are_refused_at_the_first_one_over():
    rule = " and ".join(f"p{i} is {i}" for i in range(MAX_CLAUSES + 2))
    with pytest.raises(RuleError) as caught:
        parse(rule)
    (problem,) = caught.value.problems
    assert problem.message == "the rule has 52 conditions; the limit is 50"
    assert problem.column == rule.index("p50 is 50") + 1
    assert parse(" and ".join(f"p{i} is {i}" for i in range(MAX_CLAUSES))) is not None


def test_conditions_inside_where_count_towards_the_limit():
    inner = " and ".join(f"p{i} is {i}" for i in range(MAX_CLAUSES))
    with pytest.raises(RuleError, match="51 conditions"):
        parse(f"purchased where ({inner})")


# ---- the catalogue of mistakes ----


@pytest.mark.parametrize(
    ("mistake", "example"),
    [(mistake, example) for mistake, examples in CATALOGUE.items() for example in examples],
    ids=lambda v: getattr(v, "name", repr(v)),
)
def test_each_catalogue_example_is_recognised_as_its_own_mistake(mistake, example):
    error = _example_error(example)
    assert error.match_examples(_raise_example, CATALOGUE, use_accepts=True) is mistake
    with pytest.raises(RuleError):
        parse(example)


def test_a_mistake_inside_parentheses_is_recognised_like_at_the_top():
    with pytest.raises(RuleError) as caught:
        parse("(a is 1 and (country is DE or b is 2))")
    assert caught.value.problems[0].message == "text must be in quotes"


def test_expected_words_group_what_belongs_together():
    assert expected_words({"_AND", "_OR", "$END"}) == END
    assert expected_words({"UNIT"}) == UNIT
    assert expected_words({"_TIME", "_TIMES"}) == ("`times`",)


def test_a_rule_of_stray_words_is_refused_quickly():
    rule = ("x " * 1999)[:3999]
    start = time.perf_counter()
    with pytest.raises(RuleError):
        parse(rule)
    assert time.perf_counter() - start < 2.0
