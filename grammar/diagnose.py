"""Syntax problems in plain words: every mistake in a rule that does not parse.

The rule is parsed again, token by token, with Lark's interactive parser. At each
mistake we
- name it: `UnexpectedInput.match_examples` compares the parser state with a catalogue
  of typical mistakes (CATALOGUE), and the mistake's explainer words the message;
- list what could have come there, from the interactive parser's `accepts()`;
- repair it and go on: the repair (a corrected keyword, a missing word, a word dropped)
  is the one that lets the parser read furthest past the mistake, and a corrected
  keyword becomes the hint `did you mean "within"?`.
A problem right after another one, with nothing read in between, is not reported:
it is usually the same mistake seen twice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from copy import copy
from dataclasses import dataclass
from enum import Enum
from functools import cache

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import LexerThread, PatternStr
from lark.parsers.lalr_interactive_parser import InteractiveParser
from lark.parsers.lalr_parser_state import ParserState

from grammar import vocabulary
from grammar.errors import Problem, join_or

MAX_PROBLEMS = 20
# Mistakes looked at, reported or not: each costs a search for its repair, and a rule of
# 4,000 stray characters must not keep the parser busy for seconds.
MAX_MISTAKES = 40
LOOKAHEAD = 4  # tokens a repair must let the parser read to count as a good one

UNITS = ("seconds", "minutes", "hours", "days", "weeks")
_WORD = re.compile(r"(?!\d)\w+(?:\s+(?!\d)\w+)*")
_NUMBER_WORDS = {
    "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "sixty": 60,
    "ninety": 90,
}  # fmt: skip
_COUNT_OR_WINDOW = {"_AT", "_EXACTLY", "_MORE", "_FEWER", "_LESS", "_WITHIN", "_IN"}
# Keywords that only come in pairs, inserted whole when one is missing.
_PHRASES = {
    "_MORE": ("_MORE", "_THAN"),
    "_LESS": ("_LESS", "_THAN"),
    "_FEWER": ("_FEWER", "_THAN"),
    "_AT": ("_AT", "_LEAST"),
    "_STARTS": ("_STARTS", "_WITH"),
    "_ENDS": ("_ENDS", "_WITH"),
}
_REPLACEMENT_VALUES = {
    "NAME": "x",
    "STRING": '""',
    "NUMBER": "1",
    "DATE": "2000-01-01",
    "UNIT": "days",
    "VERB": "purchased",
    "SLUG": "x",
}

# ---- what was expected, in plain words ----

_DESCRIPTIONS = {
    "NAME": "a property name",
    "STRING": "a quoted text",
    "NUMBER": "a number",
    "DATE": "a date such as 2026-01-01",
    "UNIT": "a time unit (seconds, minutes, hours, days, weeks)",
    "VERB": "an event such as purchased or opened email",
    "_PERFORMED": 'performed "<event type>"',
    "_TIME": "`times`",
    "_TIMES": "`times`",
    "_AT": "`at least` or `at most`",
    "_MORE": "`more than`",
    "_LESS": "`less than`",
    "_FEWER": "`fewer than`",
    "_STARTS": "`starts with`",
    "_ENDS": "`ends with`",
    "$END": "the end of the rule",
}
# Terminals described together when the first set is all on offer: (needs, covers, words).
_GROUPS: tuple[tuple[frozenset[str], frozenset[str], str], ...] = tuple(
    (frozenset(needs.split()), frozenset(covers.split()), words)
    for needs, covers, words in (
        (
            "NAME VERB _NOT _LPAR",
            "NAME VERB _PERFORMED _ACTIVITY _NOT _HAS _NEVER _LAST _FIRST _TOTAL _AVERAGE "
            "_MINIMUM _MAXIMUM _IN _LPAR",
            'a condition, such as country is "DE" or purchased within 7 days',
        ),
        (
            "_IS _EQ _BETWEEN _CONTAINS",
            "_IS _EQ _NE _GT _GE _LT _LE _BETWEEN _IN _NOT _CONTAINS _STARTS _ENDS _BEFORE "
            "_AFTER _MORE _LESS",
            "a comparison such as is, >, between, in, contains, before or more than ... ago",
        ),
        ("_IS _EQ _GE", "_IS _EQ _NE _GT _GE _LT _LE", "a comparison such as >= 500"),
        ("VERB _PERFORMED", "VERB _PERFORMED _ACTIVITY", _DESCRIPTIONS["VERB"]),
        ("_WITHIN _IN", "_WITHIN _IN _LESS", "a window such as within 7 days"),
        (
            "_AT _EXACTLY _FEWER",
            "_AT _EXACTLY _MORE _FEWER _LESS",
            "a count such as at least 2 times",
        ),
        ("STRING SLUG", "STRING SLUG", 'a segment name such as "engaged"'),
        ("_TIME _TIMES", "_TIME _TIMES", "`times`"),
    )
)
# The order in which expected things are listed; anything else comes before `where`.
_ORDER = [
    *("NAME", "STRING", "NUMBER", "DATE", "_TRUE", "_FALSE", "_NOT", "_KNOWN", "_UNKNOWN"),
    *("UNIT", "_WHERE", "_AND", "_OR", "_RPAR", "$END"),
]


def expected_words(accepts: Iterable[str]) -> tuple[str, ...]:
    """What the parser could take, as phrases a marketer reads: `a number`, `and`, ..."""
    left = set(accepts)
    if "NAME" in left:
        left.discard("PROPERTY")  # `property "..."` is a property name too, quoted
    phrases: list[str] = []
    for needs, covers, words in _GROUPS:
        if needs <= left:
            phrases.append(words)
            left -= covers

    def rank(name: str) -> tuple[int, int, str]:
        if name in _ORDER:
            return _ORDER.index(name), 0, ""
        return _ORDER.index("_WHERE"), -1, name

    for name in sorted(left, key=rank):
        words = _describe_terminal(name)
        if words not in phrases:
            phrases.append(words)
    return tuple(phrases)


def _describe_terminal(name: str) -> str:
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    pattern = _terminal_patterns().get(name)
    return f"`{pattern}`" if pattern else name.strip("_").lower()


@cache
def _terminal_patterns() -> dict[str, str]:
    """The literal spelling of each keyword and symbol terminal."""
    from grammar.parser import lark_parser

    return {
        t.name: t.pattern.value
        for t in lark_parser().terminals
        if isinstance(t.pattern, PatternStr)
    }


def _spellings(name: str) -> tuple[str, ...]:
    """The words a terminal can be written as, to correct a misspelt one."""
    if name == "UNIT":
        return UNITS
    if name == "VERB":
        return tuple(v.phrase for v in vocabulary.VERBS if " " not in v.phrase)
    pattern = _terminal_patterns().get(name, "")
    return (pattern,) if pattern.isalpha() else ()


# ---- the catalogue of mistakes ----


class Mistake(Enum):
    """What the parser was waiting for when the rule went wrong."""

    AFTER_PROPERTY = "a comparison after a property name"
    VALUE = "a value"
    UNIT = "a time unit"
    TIMES = "`times` after a count"
    AMOUNT = "a number of times or of time units"
    CONDITION = "a condition"
    FILTER = "a property condition after `where`"
    EVENT = "an event"
    EVENT_TYPE = "a quoted event type after `performed`"
    HAS = "`never` after `has`"
    SEGMENT = "a segment name"
    OF = "`of` in an aggregate"
    AGGREGATE_COMPARISON = "the comparison of an aggregate"
    RECENCY = "the time of `last` or `first`"
    AFTER_EVENT = "what may follow an event"
    CLAUSE_END = "what may follow a condition"


CATALOGUE: dict[Mistake, tuple[str, ...]] = {
    Mistake.AFTER_PROPERTY: (
        'country "DE"',
        "purchsed within 7 days",
        "opend email within 7 days",
        "country",
    ),
    Mistake.VALUE: (
        "country is DE",
        "country is not DE",
        "country = DE",
        "country != DE",
        "age > old",
        "age >= old",
        "age < old",
        "age <= old",
        "email contains acme",
        "email starts with acme",
        "email ends with acme",
        "signed_up_at before yesterday",
        "signed_up_at after yesterday",
        "age between young and old",
        "age between 18 and old",
        "country in (DE)",
        'country in ("AT", DE)',
        "country not in (DE)",
        'country not in ("AT", DE)',
        "total amount of purchased is big",
        "total amount of purchased is not big",
        "total amount of purchased = big",
        "total amount of purchased != big",
        "total amount of purchased > big",
        "total amount of purchased >= big",
        "total amount of purchased < big",
        "total amount of purchased <= big",
    ),
    Mistake.UNIT: (
        "purchased within 7 months",
        "purchased less than 7 months ago",
        "signed_up_at less than 7 months ago",
    ),
    Mistake.TIMES: (
        "purchased at least 3 within 7 days",
        "purchased at most 3 within 7 days",
        "purchased exactly 3 within 7 days",
        "purchased more than 30 days ago",
        "purchased fewer than 3 within 7 days",
    ),
    Mistake.AMOUNT: (
        "purchased within seven days",
        "purchased in the last seven days",
        "purchased less than seven days ago",
        "purchased at least twice",
        "purchased at most twice",
        "purchased exactly twice",
        "purchased more than twice",
        "purchased fewer than twice",
        "signed_up_at more than thirty days ago",
        "signed_up_at less than thirty days ago",
        "last purchased more than thirty days ago",
    ),
    Mistake.CONDITION: (
        "",
        'country is "DE" and',
        'country is "DE" or',
        'country is "DE" and city is "Berlin" and',
        'country is "DE" or city is "Berlin" or',
        "not",
        "(",
    ),
    Mistake.FILTER: (
        "purchased where",
        "purchased where not",
        "purchased where (",
        "purchased where (amount > 1 and",
        "purchased where (amount > 1 or",
    ),
    Mistake.EVENT: (
        "last",
        "first",
        "never",
        "has never",
        "total amount of",
    ),
    Mistake.EVENT_TYPE: ("performed trial_started",),
    Mistake.HAS: ("has purchased",),
    Mistake.SEGMENT: ("in segment",),
    Mistake.OF: ("total amount purchased",),
    Mistake.AGGREGATE_COMPARISON: (
        "total amount of purchased",
        "total amount of purchased within 7 days",
    ),
    Mistake.RECENCY: (
        "last purchased",
        "first purchased",
        "last activity",
        "last purchased 30 days ago",
        "last activity 30 days ago",
        'last performed "x" 30 days ago',
    ),
    Mistake.AFTER_EVENT: ("submitted form demo",),
    Mistake.CLAUSE_END: (
        'country is "DE" city is "Berlin"',
        "purchased once",
        "opened email within 7 days purchased",
    ),
}


class _Position:
    """A parser state compared by its place in the LALR table only.

    Lark compares states by table position and stack depth, so a mistake inside
    parentheses would not match the same mistake written at the top level.
    """

    __slots__ = ("position",)

    def __init__(self, position: object) -> None:
        self.position = position

    def __eq__(self, other: object) -> bool:
        return self.position == getattr(other, "position", None)

    def __index__(self) -> int:
        # match_examples logs the state with %d when examples share it with other accepts.
        return int(self.position)  # type: ignore[call-overload]

    __hash__ = None  # type: ignore[assignment]


@cache
def _example_error(text: str) -> UnexpectedInput:
    from grammar.parser import lark_parser

    try:
        lark_parser().parse(text)
    except UnexpectedInput as error:
        if isinstance(error, UnexpectedToken):
            _ = error.accepts  # computed now, while its interactive parser is at the error
        error.state = _Position(error.state.position)
        return error
    raise AssertionError(f"the catalogue example {text!r} parses")


def _raise_example(text: str) -> None:
    """A `parse_fn` for match_examples that parses each catalogue example once."""
    raise _example_error(text).with_traceback(None)


# ---- the diagnosis ----


@dataclass(frozen=True)
class _Repair:
    """Tokens fed instead of the unexpected one (and of the word before it, `from_previous`);
    `skip` more tokens are dropped after it."""

    kind: str  # typo, verb, event, insert, delete or replace
    tokens: tuple[Token, ...]
    from_previous: bool = False
    suggestion: str | None = None
    skip: int = 0
    covers_token: bool = False  # a repair from the previous word that also replaces the token


@dataclass(frozen=True)
class _Context:
    text: str
    token: Token
    accepts: frozenset[str]
    history: tuple[Token, ...]
    repair: _Repair | None
    in_filter: bool = False  # the word before the token was read as a property in `where`

    @property
    def previous(self) -> Token | None:
        return self.history[-1] if self.history else None


def syntax_problems(parser: Lark, text: str) -> list[Problem]:
    """Every syntax problem of a rule that does not parse (at least one)."""
    problems = _Diagnosis(parser, text).run()
    if not problems:  # the strict parser refused what the diagnosis accepted: say so plainly
        problems = [Problem(1, 1, "the rule cannot be read")]
    return problems


class _Diagnosis:
    def __init__(self, parser: Lark, text: str) -> None:
        self.text = text
        self.interactive = parser.parse_interactive(text)
        self.state: ParserState = self.interactive.parser_state
        # Only the shape matters here: building trees would cost time and could fail on
        # the placeholder tokens that repairs feed in.
        conf = copy(self.state.parse_conf)
        conf.callbacks = {}
        self.state.parse_conf = conf
        self.lexer: LexerThread = self.interactive.lexer_thread
        self.problems: list[Problem] = []
        self.history: list[Token] = []
        self.before_last: ParserState | None = None
        self.read_since_problem = 0
        self.mistakes = 0
        self.confident = True  # the last repair let the parser read well past the mistake
        self.skip = 0

    def run(self) -> list[Problem]:
        while not self._enough():
            try:
                for token in _tokens(self.lexer, self.state):
                    self._feed(token)
                    if self._enough():
                        return self.problems
            except UnexpectedCharacters as error:
                self._bad_characters(error)
                continue
            self._end()
            break
        return self.problems

    def _enough(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS or self.mistakes >= MAX_MISTAKES

    # ---- reading ----

    def _feed(self, token: Token) -> None:
        if self.skip:
            self.skip -= 1
            return
        before = self.state.copy(deepcopy_values=False)
        try:
            self.state.feed_token(token)
        except UnexpectedToken:
            # The parser may have reduced before it failed; the catalogue was recorded in
            # that same state, but repairs start from the state before the token.
            failed = self.state.copy(deepcopy_values=False)
            self._set_state(before)
            self._bad_token(token, failed)
            return
        self.before_last = before
        self.history.append(token)
        if not _is_keyword_as_name(token):
            self.read_since_problem += 1

    def _end(self) -> None:
        last = self.history[-1] if self.history else None
        end = Token.new_borrow_pos("$END", "", last) if last else Token("$END", "", 0, 1, 1)
        before = self.state.copy(deepcopy_values=False)
        try:
            self.state.feed_token(end, True)
        except UnexpectedToken:
            failed = self.state.copy(deepcopy_values=False)
            self._set_state(before)
            earlier = self._accepts(self.before_last) if self.before_last is not None else None
            history = tuple(self.history)
            if self._worth_reporting():
                self._report(end, failed, None, history, self._accepts(self.state), earlier)

    def _set_state(self, other: ParserState) -> None:
        # The lexer holds this very object, so it is changed in place.
        self.state.state_stack[:] = other.state_stack
        self.state.value_stack[:] = other.value_stack

    def _accepts(self, state: ParserState) -> frozenset[str]:
        cursor = InteractiveParser(
            self.interactive.parser, state.copy(deepcopy_values=False), copy(self.lexer)
        )
        return frozenset(cursor.accepts())

    # ---- mistakes ----

    def _worth_reporting(self) -> bool:
        """Whether enough was read since the last mistake for a new one to be its own.

        After a repair that let the parser read on well, one token is enough; after a
        doubtful one, two, so that its echoes are not reported as mistakes.
        """
        needed = 1 if self.confident else 2
        worth = not self.problems or self.read_since_problem >= needed
        self.read_since_problem = 0
        return worth

    def _bad_token(self, token: Token, failed: ParserState) -> None:
        self.mistakes += 1
        token = _retyped(token)
        history = tuple(self.history)
        accepts = self._accepts(self.state)
        before = self._accepts(self.before_last) if self.before_last is not None else None
        worth = self._worth_reporting()  # judged by the repair before this one
        repair = self._repair(token, accepts, before)
        if worth:
            self._report(token, failed, repair, history, accepts, before)

    def _report(
        self,
        token: Token,
        failed: ParserState,
        repair: _Repair | None,
        history: tuple[Token, ...],
        accepts: frozenset[str],
        before: frozenset[str] | None,
    ) -> None:
        """Word the problem at `token` (or at the word before it) and add it."""
        if history and history[-1].type == "VERB":
            verb = vocabulary.verb_for_phrase(history[-1])
            if verb is not None and verb.shorthand is None:
                accepts = accepts - {"STRING"}
        mistake = self._classify(token, failed)
        ctx = _Context(self.text, token, accepts, history, repair, _starts_filter(before))
        explained: Explanation | None
        if repair is not None and repair.kind == "drop" and history:
            explained = _explain_dropped(history[-1])
        else:
            explained = _EXPLAIN[mistake](ctx) if mistake is not None else None
        if explained is None and "_AND" in accepts and token.type != "$END":
            explained = _explain_clause_end(ctx)
        message, hint, *about_previous = explained or _explain_generic(ctx)
        at_previous = bool(about_previous and about_previous[0]) and bool(history)
        if (at_previous or (repair is not None and repair.from_previous)) and before:
            accepts = before
        line, column, end_line, end_column = _where(token, repair, history, at_previous)
        self.problems.append(
            Problem(line, column, message, expected_words(accepts), hint, end_line, end_column)
        )

    def _classify(self, token: Token, failed: ParserState) -> Mistake | None:
        cursor = InteractiveParser(
            self.interactive.parser, failed.copy(deepcopy_values=False), copy(self.lexer)
        )
        live = UnexpectedToken(
            token, set(), state=_Position(failed.position), interactive_parser=cursor
        )
        return live.match_examples(_raise_example, CATALOGUE, use_accepts=True)

    def _name_with(self, start: int) -> str | None:
        """A hint for a property name that goes on past a word (`lead-score`), if one does."""
        previous = self.history[-1] if self.history else None
        if previous is None or previous.type != "NAME" or previous.end_pos != start:
            return None
        name = re.match(r"[^\s(),]+", self.text[previous.start_pos :])
        assert name is not None
        return f'for a property named "{name.group()}", write property "{name.group()}"'

    def _bad_characters(self, error: UnexpectedCharacters) -> None:
        self.mistakes += 1
        start = error.pos_in_stream
        char = self.text[start]
        line_end = self.text.find("\n", start)
        line_end = len(self.text) if line_end < 0 else line_end
        accepts = self._accepts(self.state)
        skip_to = start + 1
        placeholder = False
        hint: str | None = None
        if char in "\"'":
            message = (
                f"the quoted text that starts here (line {error.line}, column {error.column}) "
                "is never closed"
            )
            hint = f"end the text with {char} on the same line"
            skip_to, placeholder = line_end, True
        elif char in "\u201c\u201d\u2018\u2019":
            closing = self.text.find(
                "\u201d" if char == "\u201c" else "\u2019", start + 1, line_end
            )
            message = f"{char} is a typographic quote, which the rule language does not read"
            hint = 'use straight quotes: "..."'
            if closing >= 0:
                skip_to, placeholder = closing + 1, True
        else:
            message = f'unexpected character "{char}"'
            hint = {"&": 'write "and"', "|": 'write "or"', "!": 'write "not"'}.get(char)
            hint = hint or self._name_with(start)
        if self._worth_reporting():
            self.confident = False
            self.problems.append(
                Problem(
                    error.line,
                    error.column,
                    message,
                    expected_words(accepts),
                    hint,
                    error.line,
                    error.column + (skip_to - start if placeholder else 1),
                )
            )
        self.lexer.state.line_ctr.feed(self.text[start:skip_to])
        if placeholder and "STRING" in accepts:
            quoted = Token("STRING", '""', start, error.line, error.column)
            self.state.feed_token(quoted)
            self.history.append(quoted)
            self.before_last = None

    # ---- repairs ----

    def _repair(
        self, token: Token, accepts: frozenset[str], before: frozenset[str] | None
    ) -> _Repair:
        candidates = self._candidates(token, accepts, before)
        scored = [(self._score(c), -i, c) for i, c in enumerate(candidates)]
        score, _, best = max(scored, key=lambda s: (s[0], s[1]))
        self.confident = score >= LOOKAHEAD
        if best.from_previous:
            assert self.before_last is not None
            self._set_state(self.before_last)
            self.history.pop()
        for t in best.tokens:
            self.state.feed_token(t)
            self.history.append(t)
        self.before_last = None
        self.skip = best.skip
        return best

    def _candidates(
        self, token: Token, accepts: frozenset[str], before: frozenset[str] | None
    ) -> list[_Repair]:
        word = token.value if _is_word(token) else None
        candidates = []
        if word:
            for name, spelling in _close_words(word, accepts):
                typo = _placeholder(name, token, spelling)
                candidates.append(_Repair("typo", (typo,), suggestion=spelling))
        previous = self.history[-1] if self.history else None
        # A word read as a property name may have been meant as an event or a keyword.
        guesses: list[_Repair] = []
        if previous is not None and previous.type == "NAME" and before is not None:
            if "VERB" in before and word:
                phrase = vocabulary.nearest_phrase(f"{previous} {word}")
                if phrase and " " in phrase:
                    verb = _placeholder("VERB", previous, phrase)
                    candidates.append(_Repair("verb", (verb,), True, phrase, covers_token=True))
            for name, spelling in _close_words(str(previous), before):
                replaced = _placeholder(name, previous, spelling)
                candidates.append(_Repair("typo", (replaced, token), True, spelling))
            if "VERB" in before:
                unknown = _placeholder("VERB", previous)
                if word:
                    guesses.append(_Repair("event", (unknown,), True, covers_token=True))
                guesses.append(_Repair("event", (unknown, token), True))
        if previous is not None and before is not None:
            guesses.append(_Repair("drop", (token,), True))
        for name in sorted(accepts - {"$END"}):
            candidates.append(_Repair("insert", (_placeholder(name, token), token)))
        for name in sorted(accepts & set(_PHRASES)):
            words = tuple(_placeholder(n, token) for n in _PHRASES[name])
            candidates.append(_Repair("insert", (*words, token)))
        candidates.extend(guesses)
        for skip in range(LOOKAHEAD):
            candidates.append(_Repair("delete", (), skip=skip))
        for name in sorted(accepts - {"$END"}):
            candidates.append(_Repair("replace", (_placeholder(name, token),)))
        return candidates

    def _score(self, repair: _Repair) -> int:
        """How many tokens the parser reads after the repair, up to LOOKAHEAD (also when
        it reaches the end), less the tokens the repair drops.

        One misspelt keyword further on is corrected on the way, so that a repair is not
        judged by the next mistake.
        """
        start = self.before_last if repair.from_previous else self.state
        assert start is not None
        state = start.copy(deepcopy_values=False)
        lexer = copy(self.lexer)
        try:
            for t in repair.tokens:
                state.feed_token(t)
        except UnexpectedToken:
            return -1
        read = 0
        skip = repair.skip
        corrections = 1
        last: Token | None = repair.tokens[-1] if repair.tokens else None
        try:
            for t in _tokens(lexer, state):
                if skip:
                    skip -= 1
                    continue
                if _is_keyword_as_name(t):
                    return read
                before = state.copy(deepcopy_values=False)
                try:
                    state.feed_token(t)
                except UnexpectedToken:
                    if not corrections or not _is_word(t) or not _correct(state, before, t):
                        return read
                    corrections -= 1
                last = t
                read += 1
                if read >= LOOKAHEAD:
                    return read - repair.skip
            end = Token.new_borrow_pos("$END", "", last) if last else Token("$END", "")
            state.feed_token(end, True)
        except UnexpectedInput:
            return read - repair.skip
        return -1 if skip else LOOKAHEAD - repair.skip


def _correct(state: ParserState, before: ParserState, token: Token) -> bool:
    """Feed the keyword that `token` misspells into `state` (reset to `before`), if any."""
    state.state_stack[:] = before.state_stack
    state.value_stack[:] = before.value_stack
    choices = {name for name in state.parse_conf.states[state.position] if name.isupper()}
    for name, spelling in _close_words(token.value, choices):
        attempt = state.copy(deepcopy_values=False)
        try:
            attempt.feed_token(_placeholder(name, token, spelling))
        except UnexpectedToken:
            continue
        state.state_stack[:] = attempt.state_stack
        state.value_stack[:] = attempt.value_stack
        return True
    return False


def _starts_filter(accepts: frozenset[str] | None) -> bool:
    """Whether the parser was at the start of a condition inside `where`."""
    return accepts is not None and {"NAME", "_NOT", "_LPAR"} <= accepts and "VERB" not in accepts


def _tokens(lexer: LexerThread, state: ParserState) -> Iterator[Token]:
    """The tokens of the rest of the rule, lexed for the parser's state as it goes.

    A token that the contextual lexer cannot take in this state comes out anyway (Lark
    reports it as UnexpectedToken, having read it), for the parser to refuse or a repair
    to skip. Unreadable characters still raise UnexpectedCharacters.
    """
    while True:
        try:
            yield from lexer.lex(state)
            return
        except UnexpectedToken as error:
            yield error.token


def _where(
    token: Token, repair: _Repair | None, history: tuple[Token, ...], at_previous: bool
) -> tuple[int, int, int, int]:
    """Where a problem is shown: the token, or the word a repair corrected, or the end."""
    if at_previous and history:
        previous = history[-1]
        return previous.line, previous.column, previous.end_line, previous.end_column
    if repair and repair.from_previous and history:
        start = history[-1]
        end = token if repair.covers_token else start
        return start.line, start.column, end.end_line, end.end_column
    if token.type == "$END":
        if not history:
            return 1, 1, 1, 1
        last = history[-1]
        return last.end_line, last.end_column, last.end_line, last.end_column
    return token.line, token.column, token.end_line, token.end_column


@cache
def _keyword_types() -> dict[str, str]:
    return {value.lower(): name for name, value in _terminal_patterns().items() if value.isalpha()}


def _retyped(token: Token) -> Token:
    """A word that the lexer read as a name where its keyword could not come, as that keyword.

    Wherever a word is lexed it may come out a name (see parser._EveryWord), so `days`
    after `more than 30` is a NAME; as `days` it explains and repairs better.
    """
    if token.type != "NAME":
        return token
    word = token.lower()
    name = _keyword_types().get(word)
    if name is None and word in UNITS + tuple(u[:-1] for u in UNITS):
        name = "UNIT"
    if name is None and vocabulary.verb_for_phrase(word) is not None:
        name = "VERB"
    return Token.new_borrow_pos(name, token.value, token) if name else token


def _is_keyword_as_name(token: Token) -> bool:
    """A keyword that came through as a property name: a sign of a bad repair, not progress."""
    return token.type == "NAME" and _retyped(token).type != "NAME"


def _is_word(token: Token) -> bool:
    return token.type != "STRING" and bool(_WORD.fullmatch(token.value))


def _close_words(word: str, accepts: Iterable[str]) -> list[tuple[str, str]]:
    """Keywords the parser takes here that look like a misspelling of `word`."""
    options: dict[str, str] = {}
    for name in sorted(accepts):
        for spelling in _spellings(name):
            options.setdefault(spelling, name)
    lowered = word.lower()
    cutoff = 0.5 if len(lowered) <= 3 else 0.75
    found = difflib.get_close_matches(lowered, list(options), n=3, cutoff=cutoff)
    return [(options[s], s) for s in found if s != lowered]


def _placeholder(name: str, at: Token, value: str | None = None) -> Token:
    if value is None:
        value = _REPLACEMENT_VALUES.get(name) or _terminal_patterns().get(name, name)
    return Token.new_borrow_pos(name, value, at)


# ---- explanations: (message, hint), or None to fall back on a general one ----

# (message, hint), or (message, hint, True) for a problem that lies in the word before.
Explanation = tuple[str, str | None] | tuple[str, str | None, bool]


def _describe_token(token: Token) -> str:
    kind = token.type
    if kind == "$END":
        return "the end of the rule"
    if kind == "NAME":
        return f'word "{token}"'
    if kind == "STRING":
        return f"text {token}"
    if kind == "NUMBER":
        return f"number {token}"
    if kind == "DATE":
        return f"date {token}"
    if kind == "VERB":
        return f'event "{" ".join(token.split())}"'
    return f'"{token}"'


def _did_you_mean(ctx: _Context) -> str | None:
    if ctx.repair and ctx.repair.kind in ("typo", "verb") and ctx.repair.suggestion:
        return f'did you mean "{ctx.repair.suggestion}"?'
    return None


def _unclosed(ctx: _Context) -> Token | None:
    """The `(` still open at the end of what was read, if any."""
    opened: list[Token] = []
    for t in ctx.history:
        if t.type == "_LPAR":
            opened.append(t)
        elif t.type == "_RPAR" and opened:
            opened.pop()
    return opened[-1] if opened else None


def _explain_dropped(word: Token) -> Explanation:
    word = _retyped(word)
    if word.type in ("_AND", "_OR"):
        return f'"{word}" twice in a row', "remove one, or put a condition between them"
    return f"unexpected {_describe_token(word)}", "remove it"


def _explain_generic(ctx: _Context) -> Explanation:
    token = ctx.token
    if token.type == "$END":
        if not ctx.history:
            return "the rule is empty", 'write a condition, such as country is "DE"'
        last = ctx.history[-1]
        if last.type in ("_AND", "_OR", "_NOT", "_LPAR", "_WHERE"):
            return f'the rule ends after "{last}": a condition is missing', None
        paren = _unclosed(ctx)
        if paren is not None and "_RPAR" in ctx.accepts:
            return (
                "a parenthesis is never closed",
                f"the ( at line {paren.line}, column {paren.column} needs a )",
            )
        hint = None
        if len(ctx.accepts) == 1:
            (name,) = ctx.accepts
            spelling = _terminal_patterns().get(name, "")
            hint = f'add "{spelling}"' if spelling.isalpha() else None
        return f'the rule ends too early, after "{ctx.history[-1]}"', hint
    if token.type == "_RPAR" and _unclosed(ctx) is None:
        return "this ) closes no (", "remove it, or add the ( it belongs to"
    hint = _did_you_mean(ctx)
    if hint is None and ctx.repair and ctx.repair.kind == "insert":
        inserted = ctx.repair.tokens[0].type
        spelling = _terminal_patterns().get(inserted)
        if inserted in ("_AND", "_OR"):
            hint = 'is an "and" or an "or" missing before it?'
        elif spelling and len(ctx.repair.tokens) == 2:
            hint = f'is a "{spelling}" missing before it?'
    return f"unexpected {_describe_token(token)}", hint


def _explain_after_property(ctx: _Context) -> Explanation | None:
    repair = ctx.repair
    if repair and repair.from_previous and repair.kind == "verb":
        return f'unknown event "{ctx.previous} {ctx.token}"', _did_you_mean(ctx)
    if repair and repair.from_previous and repair.kind == "typo":
        return f'unknown word "{ctx.previous}"', _did_you_mean(ctx)
    if repair and repair.kind == "typo":
        return f'unknown comparison "{ctx.token}"', _did_you_mean(ctx)
    name = str(ctx.previous) if ctx.previous is not None else "it"
    if ctx.in_filter and ctx.previous is not None:
        word = _retyped(ctx.previous)
        if word.type != "NAME":
            return (
                "`where` filters events by their properties; it cannot hold events or segments",
                'write a property condition, such as where amount > 100 or where url contains "/x"',
                True,
            )
        if ctx.token.type in ("$END", "_AND", "_OR", "_RPAR"):
            return f'"{name}" needs a comparison', f'for example: {name} is "..."'
    if ctx.token.type in ("STRING", "NUMBER", "DATE", "_TRUE", "_FALSE"):
        return (
            f'a comparison is missing between "{name}" and {ctx.token}',
            f"for example: {name} is {ctx.token}",
        )
    if ctx.token.type == "NAME":
        words = f"{name} {ctx.token}"
        return (
            f'"{words}" is neither a known event nor a comparison',
            f'for an event of another type, write performed "{"_".join(words.lower().split())}"',
        )
    return (
        f'"{name}" is neither a known event nor followed by a comparison',
        f'compare it (such as {name} is "..."), or for an event write performed "{name}"',
    )


def _explain_value(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "NAME" and not _did_you_mean(ctx):
        return "text must be in quotes", f'write "{token}"'
    if token.type == "_RPAR" and ctx.previous is not None and ctx.previous.type == "_LPAR":
        return "the list is empty", 'put at least one value in it, such as ("DE")'
    if token.type == "$END":
        return "the value to compare with is missing", None
    return None


def _explain_unit(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "$END":
        return "the time unit is missing", "for example: 7 days"
    if token.type != "NAME":
        return None
    hint = _did_you_mean(ctx)
    if hint is None and token.lower().rstrip("s") in ("month", "year", "quarter"):
        hint = "use days or weeks, such as 30 days or 52 weeks"
    return f'unknown time unit "{token}"', hint or f"the units are {join_or(UNITS)}"


def _explain_times(ctx: _Context) -> Explanation | None:
    token = ctx.token
    recent = [t.type for t in ctx.history[-3:]]
    if token.type == "UNIT" and recent[:2] in (["_MORE", "_THAN"], ["_FEWER", "_THAN"]):
        event = next((t for t in reversed(ctx.history) if t.type == "VERB"), None)
        phrase = " ".join(event.split()) if event is not None else "<event>"
        amount = ctx.history[-1]
        return (
            f'"{ctx.history[-3]} {ctx.history[-2]} {amount} {token} ago" cannot follow an event',
            f"to ask when it last happened, write last {phrase} more than {amount} {token} ago; "
            f"to count in a window, write within {amount} {token}",
        )
    if _did_you_mean(ctx):
        return None
    starts = ("_AT", "_EXACTLY", "_MORE", "_FEWER", "_LESS")
    start = next((t for t in reversed(ctx.history) if t.type in starts), None)
    if start is None or not ctx.history:
        return None
    words = " ".join(ctx.text[start.start_pos : ctx.history[-1].end_pos].split())
    return '"times" is missing after the count', f"write {words} times"


def _explain_amount(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "NAME" and token.lower() in _NUMBER_WORDS:
        return "write numbers in digits", f"write {_NUMBER_WORDS[token.lower()]}"
    if token.type in ("UNIT", "_TIME", "_TIMES"):
        return f'the number is missing before "{token}"', f"for example: 7 {token}"
    if token.type == "NAME":
        return f'"{token}" is not a number', "write a number in digits, such as 7"
    return None


_COMPARISON_AHEAD = re.compile(
    r"\s*(?:[=!<>]|(?:is|in|not|between|contains|starts|ends|before|after|more|less)(?!\w))",
    re.IGNORECASE,
)


def _explain_condition(ctx: _Context) -> Explanation | None:
    token = ctx.token
    previous = ctx.previous
    if token.type == "$END" and previous is not None:
        return f'the rule ends after "{previous}": a condition is missing', None
    if token.type == "_RPAR" and previous is not None and previous.type == "_LPAR":
        return "the parentheses are empty", "put a condition between them, or remove them"
    if token.type in ("_AND", "_OR", "_RPAR"):
        after = f' after "{previous}"' if previous is not None else " at the start"
        return f'a condition is missing{after}, before "{token}"', None
    if token.type == "STRING" and _COMPARISON_AHEAD.match(ctx.text, token.end_pos):
        return (
            f"a condition cannot start with {_describe_token(token)}",
            f"for a property of that name, write property {token}",
        )
    if token.type in ("STRING", "NUMBER", "DATE"):
        return (
            f"a condition cannot start with {_describe_token(token)}",
            'start with a property (country is "DE"), an event (purchased), not, or (',
        )
    return None


def _explain_filter(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "$END":
        return f'the rule ends after "{ctx.previous}": a property condition is missing', None
    if token.type in ("VERB", "_PERFORMED", "_ACTIVITY", "_LAST", "_FIRST", "_IN", "_NEVER"):
        return (
            "`where` filters events by their properties; it cannot hold events or segments",
            'write a property condition, such as where amount > 100 or where url contains "/x"',
        )
    return None


def _explain_event(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "$END":
        return f'the event is missing after "{ctx.previous}"', "for example: purchased"
    if token.type == "NAME":
        if _did_you_mean(ctx):
            return f'unknown event "{token}"', _did_you_mean(ctx)
        return (
            f'unknown event "{token}"',
            f"the events with a verb are {join_or(v.phrase for v in vocabulary.VERBS)}; "
            f'for any other, write performed "{token}"',
        )
    if token.type == "STRING":
        return "an event type needs performed before it", f"write performed {token}"
    return None


def _explain_event_type(ctx: _Context) -> Explanation | None:
    if ctx.token.type == "NAME":
        return "the event type must be in quotes", f'write performed "{ctx.token}"'
    return None


def _explain_has(ctx: _Context) -> Explanation | None:
    if ctx.token.type == "$END":
        return None
    return '"has" is only used before "never"', 'write has never ..., or leave out "has"'


def _explain_segment(ctx: _Context) -> Explanation | None:
    if ctx.token.type == "$END":
        return "the segment name is missing", 'for example: in segment "engaged"'
    return None


def _explain_of(ctx: _Context) -> Explanation | None:
    if len(ctx.history) < 2 or ctx.token.type not in ("VERB", "_PERFORMED", "_ACTIVITY"):
        return None
    func, prop = ctx.history[-2:]
    if prop.lower() == "of":  # `total of purchased`: the lexer took `of` for the property
        return (
            f'which property should "{func}" use?',
            f"name it before of, such as {func} amount of {ctx.token}",
            True,
        )
    return '"of" is missing', f"write {func} {prop} of {ctx.token}"


def _explain_aggregate_comparison(ctx: _Context) -> Explanation | None:
    token = ctx.token
    if token.type == "$END":
        return "the comparison is missing", "for example: total amount of purchased >= 500"
    if token.type == "NUMBER":
        return f"a comparison is missing before {token}", f"for example: >= {token}"
    if token.type in ("_AT", "_EXACTLY", "_MORE", "_FEWER", "_LESS"):
        return (
            "an aggregate takes no count: it is compared with a number",
            "for example: total amount of purchased >= 500",
        )
    return None


def _explain_recency(ctx: _Context) -> Explanation | None:
    token = ctx.token
    which = next((t for t in reversed(ctx.history) if t.type in ("_LAST", "_FIRST")), None)
    if which is None or not ctx.history:
        return None
    said = " ".join(ctx.text[which.start_pos : ctx.history[-1].end_pos].split())
    if token.type == "NUMBER":
        unit = _next_word(ctx)
        unit = unit if unit.lower().rstrip("s") + "s" in UNITS else "days"
        return (
            f'"{said}" needs "more than" or "within" before the time',
            f"write {said} more than {token} {unit} ago, or {said} within {token} {unit}",
        )
    if token.type in ("_AT", "_EXACTLY", "_FEWER"):
        event = " ".join(ctx.text[which.end_pos : ctx.history[-1].end_pos].split())
        written = re.match(r"[^\n]*?\btimes?\b", ctx.text[token.start_pos :], re.IGNORECASE)
        count = " ".join(written.group(0).split()) if written else f"{token} ... times"
        return (
            f'"{said}" takes a time, not a count',
            f"to count, leave out {which}: {event} {count}; "
            f"for a time, write {said} more than 30 days ago",
        )
    if token.type == "$END":
        return (
            f'"{said}" needs a time',
            f"for example: {said} more than 30 days ago, or {said} within 7 days",
        )
    return None


def _explain_after_event(ctx: _Context) -> Explanation | None:
    token = ctx.token
    verb = vocabulary.verb_for_phrase(str(ctx.previous)) if ctx.previous is not None else None
    if token.type == "NAME" and verb is not None and verb.shorthand and not _did_you_mean(ctx):
        return "text must be in quotes", f'write {verb.phrase} "{token}"'
    return _explain_clause_end(ctx)


def _next_word(ctx: _Context) -> str:
    """The word that follows the unexpected token in the text, if any."""
    found = re.match(r"\s*([A-Za-z_]+)", ctx.text[ctx.token.end_pos :])
    return found.group(1) if found else ""


def _in_where_chain(history: Iterable[Token]) -> bool:
    """Whether the tokens end in `where <condition> and|or <condition>` at one depth."""
    depth = 0
    joined = False
    for t in reversed(list(history)):
        if t.type == "_RPAR":
            depth += 1
        elif t.type == "_LPAR":
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and t.type in ("_AND", "_OR"):
            joined = True
        elif depth == 0 and t.type == "_WHERE":
            return joined
    return False


def _explain_clause_end(ctx: _Context) -> Explanation | None:
    token = ctx.token
    after_event = bool(ctx.history) and ctx.history[-1].type in ("VERB", "STRING", "_ACTIVITY")
    if token.type == "NUMBER" and after_event:
        following = _next_word(ctx).lower()
        if following in ("time", "times"):
            return (
                "a number of times needs at least, at most, exactly, more than or fewer than",
                f"write at least {token} {following} or exactly {token} {following}",
            )
        if following.rstrip("s") + "s" in UNITS:
            return "a window needs within before it", f"write within {token} {following}"
    if token.type == "NAME" and token.lower() in ("once", "twice", "thrice"):
        n = _NUMBER_WORDS[token.lower()]
        return (
            f'"{token}" is not a count the rule language reads',
            f"write exactly {n} {'time' if n == 1 else 'times'} or at least {n} "
            f"{'time' if n == 1 else 'times'}",
        )
    joined = ctx.repair is not None and ctx.repair.kind == "insert"
    joined = joined and ctx.repair is not None and ctx.repair.tokens[0].type in ("_AND", "_OR")
    if token.type in _COUNT_OR_WINDOW and not _did_you_mean(ctx) and not joined:
        if _in_where_chain(ctx.history):
            return (
                f'"{token}" cannot follow the second condition of a where',
                "to filter on several properties, put them in parentheses: where (... and ...)",
            )
        start = _clause_start(ctx.history)
        if start is not None and start.type in ("_HAS", "_NEVER"):
            return (
                '"never" already says how many times: none',
                "remove the count, or write the event without never and with its count",
            )
        if start is not None and start.type in ("VERB", "_PERFORMED"):
            return (
                f'"{token}" cannot come here: an event takes one count and one window',
                "remove the second one, or join two events with and",
            )
        if start is not None and start.type == "NAME":
            return (
                f'"{token}" cannot follow a condition on a property',
                "a count or a window only follows an event",
            )
    return None


def _clause_start(history: Iterable[Token]) -> Token | None:
    """The first token of the condition that the tokens end in, past any `not`."""
    depth = 0
    start = None
    for t in reversed(list(history)):
        if t.type == "_RPAR":
            depth += 1
        elif t.type == "_LPAR":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and t.type in ("_AND", "_OR", "_NOT") and start is not None:
            if t.type == "_AND" and start.type in ("NUMBER", "STRING", "DATE"):
                pass  # the `and` of `between 1 and 2`
            else:
                break
        if depth == 0:
            start = t
    return start


_EXPLAIN: dict[Mistake, Callable[[_Context], Explanation | None]] = {
    Mistake.AFTER_PROPERTY: _explain_after_property,
    Mistake.VALUE: _explain_value,
    Mistake.UNIT: _explain_unit,
    Mistake.TIMES: _explain_times,
    Mistake.AMOUNT: _explain_amount,
    Mistake.CONDITION: _explain_condition,
    Mistake.FILTER: _explain_filter,
    Mistake.EVENT: _explain_event,
    Mistake.EVENT_TYPE: _explain_event_type,
    Mistake.HAS: _explain_has,
    Mistake.SEGMENT: _explain_segment,
    Mistake.OF: _explain_of,
    Mistake.AGGREGATE_COMPARISON: _explain_aggregate_comparison,
    Mistake.RECENCY: _explain_recency,
    Mistake.AFTER_EVENT: _explain_after_event,
    Mistake.CLAUSE_END: _explain_clause_end,
}
