"""Text to AST: the Lark parser of ``segment.lark`` and the Transformer that builds ast.py nodes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput
from lark.lark import PostLex
from lark.tree import Meta

from grammar import ast as a
from grammar import checks, diagnose, vocabulary
from grammar.errors import Problem, RuleError
from grammar.literals import LiteralError, parse_date, parse_number, unquote


def _vocabulary_loader(base_path: object, grammar_path: str) -> tuple[str, str]:
    """Serve ``%import vocabulary.VERB`` from the verb table instead of a file."""
    if grammar_path != "vocabulary.lark":
        raise OSError(grammar_path)
    return "<grammar/vocabulary.py>", vocabulary.verb_grammar()


class _EveryWord(PostLex):
    """Lex a word as NAME wherever the parser stands.

    The contextual lexer only tries the terminals the parser can take next, so without
    this `withinx` would lex as `within` followed by a stray `x`. With NAME always on
    offer, keywords still win where the parser takes them (Lark retypes a NAME that
    spells a keyword of that state), and a misspelt keyword arrives whole, as a word the
    error report can name and correct.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Pass the tokens through unchanged."""
        return stream


def build_parser() -> Lark:
    """A new LALR parser of the rule language, with the verbs of the table as it is now."""
    return Lark.open(
        "segment.lark",
        rel_to=__file__,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        import_paths=[_vocabulary_loader],
        postlex=_EveryWord(),
    )


@cache
def lark_parser() -> Lark:
    """The parser every `parse` uses, built on first use."""
    return build_parser()


def parse(text: str) -> a.Condition:
    """The AST of a rule; raises RuleError with every problem found."""
    if not isinstance(text, str):
        raise TypeError(f"a rule is text, not {type(text).__name__}")
    problems = checks.length_problems(text)
    if problems:
        raise RuleError(problems)
    parser = lark_parser()
    try:
        tree = parser.parse(text)
    except UnexpectedInput:
        raise RuleError(diagnose.syntax_problems(parser, text)) from None
    problems = checks.nesting_problems(tree)
    if problems:
        raise RuleError(problems)
    builder = _Builder()
    node = builder.transform(tree)
    problems = builder.problems + checks.check(node)
    if problems:
        raise RuleError(problems)
    return node


def _span(meta: Meta) -> a.Span | None:
    if getattr(meta, "empty", True):
        return None
    return a.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(token: Token) -> a.Span:
    return a.Span(token.line, token.column, token.end_line, token.end_column)


@v_args(inline=True, meta=True)
class _Builder(Transformer[Token, a.Condition]):
    """Builds the AST from the parse tree; literals that have no meaning become problems."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.problems: list[Problem] = []

    def _problem(self, token: Token, message: str, hint: str | None = None) -> None:
        self.problems.append(
            Problem(
                token.line,
                token.column,
                message,
                hint=hint,
                end_line=token.end_line,
                end_column=token.end_column,
            )
        )

    def _whole(self, token: Token, what: str) -> int:
        """A count or an amount of time: a whole number, or a problem and 1."""
        try:
            value = parse_number(token)
        except LiteralError as exc:
            self._problem(token, str(exc))
            return 1
        if isinstance(value, float):
            self._problem(token, f"{what} must be a whole number, not {token}")
            return max(1, int(value))
        return value

    # ---- logic ----

    def or_(self, meta: Meta, *items: a.Condition) -> a.Or:
        return a.Or(items, span=_span(meta))

    def and_(self, meta: Meta, *items: a.Condition) -> a.And:
        return a.And(items, span=_span(meta))

    def not_(self, meta: Meta, item: a.Condition) -> a.Not:
        return a.Not(item, span=_span(meta))

    def group(self, meta: Meta, item: a.Condition) -> a.Condition:
        return item

    def in_segment(self, meta: Meta, name: Token) -> a.InSegment:
        segment = unquote(name) if name.type == "STRING" else str(name)
        if not segment.strip():
            self._problem(name, "the segment name is empty")
        return a.InSegment(segment, span=_span(meta))

    # ---- property conditions ----

    def quoted_prop(self, meta: Meta, keyword: Token, token: Token) -> Token:
        name = unquote(token)
        problem = vocabulary.rule_property_problem(name)
        if problem is not None:
            self._problem(token, problem)
        return Token.new_borrow_pos("NAME", name, token)

    def property_prop(self, meta: Meta, word: Token) -> Token:
        return word  # a property named property (or Property), as written

    def compare(self, meta: Meta, name: Token, op: a.CompareOp, value: a.Value) -> a.Compare:
        return a.Compare(str(name), op, value, span=_span(meta))

    def between(self, meta: Meta, name: Token, low: Any, high: Any) -> a.Between:
        return a.Between(str(name), low, high, span=_span(meta))

    def in_list(self, meta: Meta, name: Token, values: tuple[a.Value, ...]) -> a.InList:
        return a.InList(str(name), values, span=_span(meta))

    def not_in_list(self, meta: Meta, name: Token, values: tuple[a.Value, ...]) -> a.InList:
        return a.InList(str(name), values, negated=True, span=_span(meta))

    def text_match(self, meta: Meta, name: Token, op: a.TextOp, value: Any) -> a.TextMatch:
        return a.TextMatch(str(name), op, value, span=_span(meta))

    def known(self, meta: Meta, name: Token) -> a.Known:
        return a.Known(str(name), True, span=_span(meta))

    def unknown(self, meta: Meta, name: Token) -> a.Known:
        return a.Known(str(name), False, span=_span(meta))

    def date_compare(self, meta: Meta, name: Token, op: a.DateOp, value: Any) -> a.DateCompare:
        return a.DateCompare(str(name), op, value, span=_span(meta))

    def ago(self, meta: Meta, name: Token, op: a.AgoOp, duration: a.Duration) -> a.Ago:
        return a.Ago(str(name), op, duration, span=_span(meta))

    def eq(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.EQ

    def ne(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.NE

    def gt(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.GT

    def ge(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.GE

    def lt(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.LT

    def le(self, meta: Meta) -> a.CompareOp:
        return a.CompareOp.LE

    def contains(self, meta: Meta) -> a.TextOp:
        return a.TextOp.CONTAINS

    def starts_with(self, meta: Meta) -> a.TextOp:
        return a.TextOp.STARTS_WITH

    def ends_with(self, meta: Meta) -> a.TextOp:
        return a.TextOp.ENDS_WITH

    def before(self, meta: Meta) -> a.DateOp:
        return a.DateOp.BEFORE

    def after(self, meta: Meta) -> a.DateOp:
        return a.DateOp.AFTER

    def ago_more_than(self, meta: Meta) -> a.AgoOp:
        return a.AgoOp.MORE_THAN

    def ago_less_than(self, meta: Meta) -> a.AgoOp:
        return a.AgoOp.LESS_THAN

    def values(self, meta: Meta, *items: a.Value) -> tuple[a.Value, ...]:
        return items

    # ---- literals ----

    def string(self, meta: Meta, token: Token) -> str:
        return unquote(token)

    def number(self, meta: Meta, token: Token) -> int | float:
        try:
            return parse_number(token)
        except LiteralError as exc:
            self._problem(token, str(exc))
            return 0

    def date(self, meta: Meta, token: Token) -> a.DateValue:
        try:
            ms = parse_date(token)
        except LiteralError as exc:
            self._problem(token, str(exc))
            ms = 0
        return a.DateValue(ms, span=_token_span(token))

    def true(self, meta: Meta) -> bool:
        return True

    def false(self, meta: Meta) -> bool:
        return False

    # ---- event conditions ----

    def event_clause(
        self, meta: Meta, selector: a.EventSelector, *rest: a.Count | a.Duration
    ) -> a.EventCount:
        count = next((r for r in rest if isinstance(r, a.Count)), a.AT_LEAST_ONCE)
        window = next((r for r in rest if isinstance(r, a.Duration)), None)
        return a.EventCount(selector, count, window, span=_span(meta))

    def never_clause(
        self, meta: Meta, selector: a.EventSelector, window: a.Duration | None = None
    ) -> a.EventCount:
        # `never` is the count; its words are not in the tree, so it shares the clause's span.
        never = a.Count(a.CountOp.EXACTLY, 0, span=_span(meta))
        return a.EventCount(selector, never, window, span=_span(meta))

    def aggregate(
        self, meta: Meta, func: a.AggregateFunc, name: Token, selector: a.EventSelector, *rest: Any
    ) -> a.Aggregate:
        *window, op, value = rest
        return a.Aggregate(
            func, str(name), selector, window[0] if window else None, op, value, span=_span(meta)
        )

    def total(self, meta: Meta) -> a.AggregateFunc:
        return a.AggregateFunc.TOTAL

    def average(self, meta: Meta) -> a.AggregateFunc:
        return a.AggregateFunc.AVERAGE

    def minimum(self, meta: Meta) -> a.AggregateFunc:
        return a.AggregateFunc.MINIMUM

    def maximum(self, meta: Meta) -> a.AggregateFunc:
        return a.AggregateFunc.MAXIMUM

    def last(
        self, meta: Meta, selector: a.EventSelector, op: tuple[a.RecencyOp, a.Duration]
    ) -> a.Recency:
        return a.Recency(a.Which.LAST, selector, *op, span=_span(meta))

    def first(
        self, meta: Meta, selector: a.EventSelector, op: tuple[a.RecencyOp, a.Duration]
    ) -> a.Recency:
        return a.Recency(a.Which.FIRST, selector, *op, span=_span(meta))

    def recency_within(self, meta: Meta, duration: a.Duration) -> tuple[a.RecencyOp, a.Duration]:
        return a.RecencyOp.WITHIN, duration

    def recency_more_than_ago(
        self, meta: Meta, duration: a.Duration
    ) -> tuple[a.RecencyOp, a.Duration]:
        return a.RecencyOp.MORE_THAN_AGO, duration

    def verb(self, meta: Meta, phrase: Token, *rest: Token | a.Condition) -> a.EventSelector:
        verb = vocabulary.verb_for_phrase(phrase)
        if verb is None:  # the VERB terminal is built from the same table
            raise AssertionError(f"no verb for {phrase!r}")
        filters: list[a.Condition] = []
        for part in rest:
            if not isinstance(part, Token):
                filters.append(part)
            elif verb.shorthand is None:
                self._problem(
                    part,
                    f'"{verb.phrase}" takes no text after it',
                    hint=f'to filter its events, write {verb.phrase} where <property> is "..."',
                )
            else:
                shorthand = a.Compare(
                    verb.shorthand, a.CompareOp.EQ, unquote(part), span=_token_span(part)
                )
                filters.insert(0, shorthand)
        return a.EventSelector(verb.event_type, _all_of(filters, meta), span=_span(meta))

    def performed(
        self, meta: Meta, event_type: Token, where: a.Condition | None = None
    ) -> a.EventSelector:
        name = unquote(event_type)
        if not name.strip():
            self._problem(event_type, "the event type is empty")
        elif not vocabulary.EVENT_TYPE.fullmatch(name):
            self._problem(
                event_type, f"no event has the type {event_type}", vocabulary.EVENT_TYPE_TEXT
            )
        return a.EventSelector(name, where, span=_span(meta))

    def activity(self, meta: Meta, where: a.Condition | None = None) -> a.EventSelector:
        return a.EventSelector(None, where, span=_span(meta))

    def count_at_least(self, meta: Meta, n: Token) -> a.Count:
        return a.Count(a.CountOp.AT_LEAST, self._whole(n, "a number of times"), span=_span(meta))

    def count_at_most(self, meta: Meta, n: Token) -> a.Count:
        return a.Count(a.CountOp.AT_MOST, self._whole(n, "a number of times"), span=_span(meta))

    def count_exactly(self, meta: Meta, n: Token) -> a.Count:
        return a.Count(a.CountOp.EXACTLY, self._whole(n, "a number of times"), span=_span(meta))

    def count_more_than(self, meta: Meta, n: Token) -> a.Count:
        return a.Count(a.CountOp.MORE_THAN, self._whole(n, "a number of times"), span=_span(meta))

    def count_fewer_than(self, meta: Meta, n: Token) -> a.Count:
        return a.Count(a.CountOp.FEWER_THAN, self._whole(n, "a number of times"), span=_span(meta))

    def window(self, meta: Meta, duration: a.Duration) -> a.Duration:
        return duration

    def duration(self, meta: Meta, amount: Token, unit: Token) -> a.Duration:
        name = unit.lower()
        plural = name if name.endswith("s") else name + "s"
        return a.Duration(
            self._whole(amount, "an amount of time"), a.Unit(plural), span=_span(meta)
        )


def _all_of(filters: list[a.Condition], meta: Meta) -> a.Condition | None:
    if not filters:
        return None
    if len(filters) == 1:
        return filters[0]
    return a.And(tuple(filters), span=_span(meta))
